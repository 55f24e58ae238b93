"""The Merkle tree kept as C2SP tiles: extending it, its root, and the nodes proofs need.

Pure functions over tile bytes. A tile (level L, index N) holds the hashes of perfect subtrees
of height 8L covering positions [256N, 256N + width) of level L. A node (height h, index k)
with h = 8L + r lies in one level-L tile: it is the root over 2**r of that tile's hashes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

from ..merkle import EMPTY_ROOT, fold_level, fold_range, leaf_hashes, range_nodes
from ..tiles import TILE_HEIGHT, TILE_WIDTH

HASH = 32
TILE_BYTES = TILE_WIDTH * HASH

TileKey = tuple[int, int]
Node = tuple[int, int]


def tile_hashes(data: bytes) -> list[bytes]:
    return [data[i : i + HASH] for i in range(0, len(data), HASH)]


def tile_levels(data: bytes) -> list[bytes]:
    """The complete nodes inside a tile, level by level, each level as one blob.

    For a full tile: [256 hashes, 128, ..., 1 (the tile's root)]; for a partial tile of width
    w, level r holds the w >> r nodes that are complete. Blobs, not lists of 32-byte objects:
    a cached tile costs 16 KiB instead of 40. Integration hashes about one node per entry here:
    ledger/_merkle.c does it in one call through OpenSSL (0.1 µs a node instead of 0.55) where
    it is built, and this Python code where it is not.
    """
    return _tile_levels(data)


def _python_tile_levels(data: bytes) -> list[bytes]:
    level = tile_hashes(data)
    levels = [data]
    while len(level) > 1:
        level = fold_level(level[: len(level) & ~1])
        levels.append(b"".join(level))
    return levels


try:
    from .._merkle import tile_levels as _tile_levels
except ImportError:
    _tile_levels = _python_tile_levels


def edge_coords(size: int) -> list[TileKey]:
    """The right-most partial tile of every level of a tree of ``size`` (those with width > 0)."""
    coords = []
    level = 0
    count = size
    while count:
        if count & (TILE_WIDTH - 1):
            coords.append((level, count >> TILE_HEIGHT))
        count >>= TILE_HEIGHT
        level += 1
    return coords


def extend(
    size: int, edge: Mapping[TileKey, bytes], leaf_hashes: Sequence[bytes]
) -> tuple[int, dict[TileKey, bytes], dict[TileKey, list[bytes]]]:
    """Append leaf hashes to a tree of ``size`` whose partial edge tiles are ``edge``.

    Returns the new size, every tile that changed (to upsert), and the inner levels of the
    tiles that became full (to warm the proof cache).
    """
    writes: dict[TileKey, bytes] = {}
    completed: dict[TileKey, list[bytes]] = {}
    level, count, hashes = 0, size, list(leaf_hashes)
    while hashes:
        index, width = count >> TILE_HEIGHT, count & (TILE_WIDTH - 1)
        buf = edge.get((level, index), b"")[: width * HASH] if width else b""
        if len(buf) != width * HASH:
            raise ValueError(f"tile ({level}, {index}) holds {len(buf) // HASH} hashes, not {width}")
        above: list[bytes] = []
        i = 0
        while i < len(hashes):
            take = min(TILE_WIDTH - width, len(hashes) - i)
            buf += b"".join(hashes[i : i + take])
            i += take
            width += take
            if width == TILE_WIDTH:
                writes[(level, index)] = buf
                levels = tile_levels(buf)
                completed[(level, index)] = levels
                above.append(levels[-1])
                index, width, buf = index + 1, 0, b""
        if buf:
            writes[(level, index)] = buf
        level, count, hashes = level + 1, count >> TILE_HEIGHT, above
    return size + len(leaf_hashes), writes, completed


def root_from_edge(size: int, edge: Mapping[TileKey, bytes]) -> bytes:
    """Root of a tree of ``size`` from its partial edge tiles alone."""
    if size == 0:
        return EMPTY_ROOT
    border: list[bytes] = []
    for level, index in reversed(edge_coords(size)):
        width = (size >> (TILE_HEIGHT * level)) & (TILE_WIDTH - 1)
        hashes = tile_hashes(edge[(level, index)][: width * HASH])
        for height, k in range_nodes(0, width):
            border.append(_perfect(hashes[k << height : (k + 1) << height]))
    return fold_range(border)


def _perfect(hashes: list[bytes]) -> bytes:
    while len(hashes) > 1:
        hashes = fold_level(hashes)
    return hashes[0]


class TileCache:
    """Levels of tiles, for the hottest tiles.

    A tile's hashes at width w never change (tiles only grow), so the levels computed over
    them stay true for every later tree; a wider copy of the same tile replaces a narrower.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity  # tiles; at most 16 KiB each
        self._levels: OrderedDict[TileKey, list[bytes]] = OrderedDict()

    def get(self, key: TileKey) -> list[bytes] | None:
        levels = self._levels.get(key)
        if levels is not None:
            self._levels.move_to_end(key)
        return levels

    def put(self, key: TileKey, levels: list[bytes]) -> None:
        if self.capacity <= 0:
            return
        old = self._levels.get(key)
        if old is not None and len(old[0]) > len(levels[0]):
            return
        self._levels[key] = levels
        self._levels.move_to_end(key)
        while len(self._levels) > self.capacity:
            self._levels.popitem(last=False)

    def clear(self) -> None:
        self._levels.clear()


def levels_from_row(hashes: bytes, inner: bytes | None) -> list[bytes]:
    """A tile's levels from its stored row. The integrator stores the inner levels of every
    tile it writes, full or partial; rows without them (or not matching) are hashed again."""
    width = len(hashes) // HASH
    if inner is None or len(hashes) % HASH or len(inner) != _inner_count(width) * HASH:
        return tile_levels(hashes)
    levels, pos, count = [hashes], 0, width >> 1
    while count:
        levels.append(inner[pos : pos + count * HASH])
        pos += count * HASH
        count >>= 1
    return levels


def _inner_count(width: int) -> int:
    """How many complete inner nodes a tile of ``width`` hashes has (255 for a full tile)."""
    total, count = 0, width >> 1
    while count:
        total += count
        count >>= 1
    return total


def inner_levels(levels: list[bytes]) -> bytes:
    """What the ``inner`` column stores for a tile: its levels above the first, concatenated."""
    return b"".join(levels[1:])


def lookup_nodes(nodes: Iterable[Node], cache: TileCache) -> tuple[dict[Node, bytes], set[TileKey]]:
    """Hashes of the nodes the cached tiles hold, and the tiles still needed for the rest."""
    found: dict[Node, bytes] = {}
    missing: set[TileKey] = set()
    for node in nodes:
        height, k = node
        level, r = divmod(height, TILE_HEIGHT)
        key = (level, (k << r) >> TILE_HEIGHT)
        pos = k & ((TILE_WIDTH >> r) - 1)
        levels = cache.get(key)
        if levels is not None and r < len(levels) and (pos + 1) * HASH <= len(levels[r]):
            found[node] = levels[r][pos * HASH : (pos + 1) * HASH]
        else:
            missing.add(key)
    return found, missing


def hash_entries(start: int, entries: list[bytes]) -> tuple[bytes, dict[int, bytes]]:
    """Leaf hashes of the entries at ``start``.., and the inner levels of each level-0 tile
    they fill entirely. Module-level and free of storage, so a process pool can run it."""
    hashes = leaf_hashes(entries)
    inner: dict[int, bytes] = {}
    first = -start % TILE_WIDTH
    for i in range(first, len(hashes) - TILE_WIDTH + 1, TILE_WIDTH):
        inner[(start + i) >> TILE_HEIGHT] = inner_levels(tile_levels(b"".join(hashes[i : i + TILE_WIDTH])))
    return b"".join(hashes), inner
