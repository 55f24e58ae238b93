"""``rlhf-audit tiles export``: the read path as static files, byte for byte what the API serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.checkpoint import Checkpoint
from ledger.errors import LedgerError, NotFound
from ledger.log import Log
from ledger.merkle import HASH_SIZE, root_of, verify_inclusion
from ledger.note import open_note
from ledger.tile_export import export_tiles
from ledger.tiles import TILE_WIDTH, entries_path, tile_path
from tests.support.cli_run import cli, cli_env


async def _grow(log: Log, start: int, n: int) -> None:
    await log.append([{"kind": "test.event", "i": i, "pad": "x" * (i % 40)} for i in range(start, start + n)])
    await log.integrate()


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def test_export_is_what_the_api_serves_and_is_incremental(log: Log, tmp_path: Path) -> None:
    out = tmp_path / "static"
    with pytest.raises(NotFound):
        await export_tiles(log, out)
    await _grow(log, 0, 300)  # a full tile, a partial one, and a level-1 partial
    first = await export_tiles(log, out)
    files = _files(out)
    assert first.size == 300 and first.files_written == len(files) and first.files_kept == 0
    assert files["checkpoint"] == (await log.latest_checkpoint()).note
    assert files[tile_path(0, 0)] == await log.tile(0, 0)
    assert files[tile_path(0, 1, 44)] == await log.tile(0, 1, 44)
    assert files[tile_path(1, 0, 1)] == await log.tile(1, 0, 1)
    assert files[entries_path(0)] == await log.entry_bundle(0)
    assert files[entries_path(1, 44)] == await log.entry_bundle(1, 44)
    assert set(files) == {"checkpoint", tile_path(0, 0), tile_path(0, 1, 44), tile_path(1, 0, 1),
                          entries_path(0), entries_path(1, 44)}

    full_tile = out / tile_path(0, 0)
    before = full_tile.stat().st_mtime_ns
    await _grow(log, 300, 600)  # 900 entries: three full tiles now
    second = await export_tiles(log, out)
    assert second.size == 900
    assert full_tile.stat().st_mtime_ns == before  # immutable files are not written again
    assert second.files_kept == 2  # tile 0/0 and entry bundle 0
    files = _files(out)
    for i in range(3):
        assert files[tile_path(0, i)] == await log.tile(0, i)
        assert files[entries_path(i)] == await log.entry_bundle(i)
    assert files[tile_path(0, 3, 132)] == await log.tile(0, 3, 132)
    assert tile_path(0, 1, 44) in files  # a client holding the old checkpoint still finds its tiles

    # A tlog-tiles client needs nothing else: the checkpoint's root from the level-0 tiles alone,
    # and each bundled entry hashes to its leaf.
    note = files["checkpoint"]
    cp = Checkpoint.parse(open_note(note, [log.signer.verifier]).text)
    leaves = b"".join(files[tile_path(0, i)] for i in range(3)) + files[tile_path(0, 3, 132)]
    hashes = [leaves[k : k + HASH_SIZE] for k in range(0, len(leaves), HASH_SIZE)]
    assert cp.size == len(hashes) == 900 and root_of(hashes) == cp.root_hash
    proof = await log.inclusion_proof(517, 900)
    verify_inclusion(517, 900, hashes[517], proof.audit_path, cp.root_hash)


async def test_export_into_a_file_is_refused(log: Log, tmp_path: Path) -> None:
    await _grow(log, 0, TILE_WIDTH)
    target = tmp_path / "file"
    target.write_text("not a directory")
    with pytest.raises(LedgerError, match="not a directory"):
        await export_tiles(log, target)


def test_cli_export(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    cli(env, "init", "--origin", "example.org/tiles")
    out = str(tmp_path / "out")
    empty = cli(env, "tiles", "export", out, ok=False)
    assert b"no checkpoint" in empty.stderr
    lines = "".join(json.dumps({"kind": "test.event", "i": i}) + "\n" for i in range(260))
    cli(env, "append", input=lines.encode())
    report = json.loads(cli(env, "tiles", "export", out).stdout)
    assert report["tree_size"] == 260 and report["files_written"] == 6
    assert (tmp_path / "out" / "checkpoint").read_bytes() == cli(env, "checkpoint").stdout
    again = json.loads(cli(env, "tiles", "export", out).stdout)
    assert again["files_written"] == 1 and again["files_kept"] == 5  # only the checkpoint
