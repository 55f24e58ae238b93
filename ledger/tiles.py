"""C2SP tlog-tiles layout: tile coordinates and paths, as pure functions.

A tile at level L holds up to 256 consecutive hashes of perfect subtrees of height 8*L: level 0
holds leaf hashes, level 1 the roots of full level-0 tiles, and so on. Full tiles never change;
the right-most tile of each level is partial and grows.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "MAX_TREE_SIZE",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "TileID",
    "encode_index",
    "entries_path",
    "frame_entries",
    "parse_tile_path",
    "tile_path",
    "tiles_for_size",
    "unframe_entries",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # 256
MAX_TREE_SIZE = (1 << 63) - 1  # entries are indexed by signed 64-bit integers in both databases
_MAX_GROUPS = 7  # three-digit groups of the largest index below MAX_TREE_SIZE (19 digits)


@dataclass(frozen=True, order=True)
class TileID:
    """A tile: its level, its index in that level and its width (256 when full)."""

    level: int
    index: int
    width: int = TILE_WIDTH

    @property
    def is_full(self) -> bool:
        return self.width == TILE_WIDTH


def encode_index(n: int) -> str:
    """Tile index path segment: groups of three digits, all but the last prefixed ``x``."""
    if n < 0:
        raise ValueError("tile index must be non-negative")
    digits = str(n)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])


def _width_suffix(width: int) -> str:
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"tile width must be 1..{TILE_WIDTH}")
    return "" if width == TILE_WIDTH else f".p/{width}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]``."""
    return f"tile/{level}/{encode_index(index)}{_width_suffix(width)}"


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>[.p/<W>]``."""
    return f"tile/entries/{encode_index(index)}{_width_suffix(width)}"


def _decode_index(parts: list[str]) -> int:
    if not parts or any(not p for p in parts):
        raise ValueError("empty tile index")
    if len(parts) > _MAX_GROUPS:  # before int(): thousands of digits cost time and raise late
        raise ValueError("tile index beyond what a log can hold")
    *prefix, last = parts
    if any(len(p) != 4 or p[0] != "x" or not p[1:].isdigit() for p in prefix):
        raise ValueError("bad tile index group")
    if len(last) != 3 or not last.isdigit():
        raise ValueError("bad tile index group")
    return int("".join(p[1:] for p in prefix) + last)


def parse_tile_path(path: str) -> tuple[int | None, int, int]:
    """Parse ``<L>/<N>[.p/<W>]`` or ``entries/<N>[.p/<W>]`` (the part after ``tile/``).

    Returns (level or None for entry bundles, index, width). Raises ValueError on anything
    that is not a canonical tile path, so one tile has exactly one URL, and on a tile that no log
    of at most MAX_TREE_SIZE entries has (whose last hash would cover an entry beyond it).
    """
    width = TILE_WIDTH
    if ".p/" in path:
        path, _, w = path.partition(".p/")
        if not w.isdigit() or w != str(int(w)) or not 1 <= int(w) < TILE_WIDTH:
            raise ValueError("bad partial tile width")
        width = int(w)
    head, _, rest = path.partition("/")
    if head == "entries":
        level = None
    elif head.isdigit() and head == str(int(head)) and int(head) < 64:
        level = int(head)
    else:
        raise ValueError("bad tile level")
    index = _decode_index(rest.split("/"))
    if encode_index(index) != rest:
        raise ValueError("non-canonical tile index")
    if (index * TILE_WIDTH + width) << (TILE_HEIGHT * (level or 0)) > MAX_TREE_SIZE:
        raise ValueError("tile beyond what a log can hold")
    return level, index, width


def tiles_for_size(size: int, level: int) -> tuple[int, int]:
    """(number of full tiles, width of the partial tile or 0) at ``level`` for a tree of ``size``."""
    count = size >> (TILE_HEIGHT * level)
    return count >> TILE_HEIGHT, count & (TILE_WIDTH - 1)


def frame_entries(entries: Sequence[bytes]) -> bytes:
    """Entries as an entry bundle frames them: each as a 2-byte big-endian length and its bytes.

    On the append path for every entry: the lengths are packed by one ``map`` and interleaved
    by slice assignment (0.1 µs an entry; a ``to_bytes`` and a concatenation each cost 0.3)."""
    parts: list[bytes] = [b""] * (2 * len(entries))
    parts[1::2] = entries
    parts[0::2] = map(_LENGTH.pack, map(len, entries))
    return b"".join(parts)


_LENGTH = struct.Struct(">H")


def unframe_entries(data: bytes) -> list[bytes]:
    """The entries of an entry bundle (or of a run of one). Raises ValueError where the framing
    does not add up (a length past the end)."""
    out = []
    pos, end = 0, len(data)
    while pos < end:
        start = pos + 2
        pos = start + ((data[pos] << 8) | data[pos + 1] if start <= end else 0)
        if pos > end:
            raise ValueError(f"an entry's length runs past the end at byte {start - 2} of {end}")
        out.append(data[start:pos])
    return out
