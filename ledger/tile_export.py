"""Export the log's read path as static files in C2SP tlog-tiles layout.

Everything a tlog-tiles client reads is a file whose name says what it holds: full tiles and
entry bundles never change, and a partial one is named by its width (``.p/<W>``), so it never
changes either. Only ``checkpoint`` is replaced. That lets any static web server, CDN or object
store serve the whole public read path (measured in docs/scaling.md: nginx served full tiles at
22x the app's rate), with the app left to take writes.

The export is incremental: a file already present is not written again, so exporting after
each checkpoint costs what is new. Every file is written to a temporary name and renamed, and
``checkpoint`` goes last, so a reader never sees a checkpoint whose tiles are not there yet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import LedgerError, NotFound, StorageError
from .log import Log
from .merkle import HASH_SIZE
from .tiles import TILE_HEIGHT, TILE_WIDTH, entries_path, frame_entries, tile_path, tiles_for_size

__all__ = ["TileExport", "export_tiles"]

_READ_CHUNK = 256  # tiles (or entry bundles) read per query


@dataclass(frozen=True)
class TileExport:
    """What one export did: the tree size it covers and the files it wrote."""

    size: int
    files_written: int
    files_kept: int
    bytes_written: int


class _Writer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.written = self.kept = self.nbytes = 0

    def exists(self, rel: str) -> bool:
        if (self.root / rel).is_file():
            self.kept += 1
            return True
        return False

    def put(self, rel: str, data: bytes) -> None:
        path = self.root / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)  # readers see the whole file or none
        except OSError as e:
            raise StorageError(f"cannot write {path}: {e}") from e
        self.written += 1
        self.nbytes += len(data)


async def _export_level(log: Log, out: _Writer, size: int, level: int) -> None:
    full, partial = tiles_for_size(size, level)
    wanted = [(i, TILE_WIDTH) for i in range(full) if not out.exists(tile_path(level, i))]
    if partial and not out.exists(tile_path(level, full, partial)):
        wanted.append((full, partial))
    for k in range(0, len(wanted), _READ_CHUNK):
        part = wanted[k : k + _READ_CHUNK]
        rows = await log.store.read_tile_rows([(level, i) for i, _ in part])
        for i, width in part:
            hashes = rows.get((level, i), (b"", None))[0]
            if len(hashes) < width * HASH_SIZE:
                raise StorageError(f"tile {level}/{i} holds {len(hashes) // HASH_SIZE} hashes; "
                                   f"the checkpoint needs {width}")
            out.put(tile_path(level, i, width), hashes[: width * HASH_SIZE])


async def _export_entries(log: Log, out: _Writer, size: int) -> None:
    full, partial = tiles_for_size(size, 0)
    wanted = [(i, TILE_WIDTH) for i in range(full) if not out.exists(entries_path(i))]
    if partial and not out.exists(entries_path(full, partial)):
        wanted.append((full, partial))
    k = 0
    while k < len(wanted):  # consecutive bundles, up to _READ_CHUNK of them, in one read
        run = 1
        while (run < _READ_CHUNK and k + run < len(wanted)
               and wanted[k + run][0] == wanted[k][0] + run):
            run += 1
        part = wanted[k : k + run]
        start = part[0][0] * TILE_WIDTH
        end = part[-1][0] * TILE_WIDTH + part[-1][1]
        entries = await log.store.read_entries(start, end)
        if len(entries) != end - start:
            raise StorageError(f"entries {start}..{end - 1} are missing")
        for i, width in part:
            at = i * TILE_WIDTH - start
            out.put(entries_path(i, width),
                    frame_entries(entries[at : at + width]))
        k += run


async def export_tiles(log: Log, root: Path | str) -> TileExport:
    """Write the newest checkpoint's tiles, entry bundles and the checkpoint under ``root``."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise LedgerError(f"{root} is not a directory")
    latest = await log.latest_checkpoint()
    if latest is None:
        raise NotFound("the log has no checkpoint yet: nothing to export")
    size = latest.size
    out = _Writer(root)
    level = 0
    while size >> (TILE_HEIGHT * level):  # a level exists while it holds at least one hash
        await _export_level(log, out, size, level)
        level += 1
    await _export_entries(log, out, size)
    out.put("checkpoint", latest.note)  # last: every file it needs is in place
    return TileExport(size, out.written, out.kept, out.nbytes)
