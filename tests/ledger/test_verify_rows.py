"""`verify` names every inconsistency of the ledger's own rows (counters, tree row, entry rows,
tiles, checkpoints, timestamps), edited by hand with SQL: a named finding, never a crash."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from ledger._internal.local_tsa import LocalTSA
from ledger.audit import audit_log
from ledger.home import LogHome
from ledger.log import Log
from tests.support.cli_run import cli, cli_env
from tests.support.entry_rows import build, sql

Tamper = Callable[[Log], Awaitable[None]]

# (SQL run against the built 600-entry log, the finding's kind, text it contains); a ? stands for
# the bytes in PARAMS
PARAMS = {"tree root edited": b"\x00", "short tile": b"\x01\x02", "garbage checkpoint note": b"\x00\xff"}
CASES: dict[str, tuple[str, str, str]] = {
    "sequence counter lowered": ("UPDATE log_sequence SET next_index = next_index - 2",
                                 "sequence", "sequence counter 598 is behind the tree size 600"),
    "sequence counter far ahead": ("UPDATE log_sequence SET next_index = 4611686018427387904",
                                   "entries-missing", "entries 600..4611686018427387903"),
    "sequence row deleted": ("DELETE FROM log_sequence", "sequence",
                             "the sequence row (table log_sequence) is missing"),
    "tree beyond the entries": ("UPDATE log_tree SET size = size + 5", "entries-missing",
                                "the tree row says 605 entries are integrated"),
    "tree row deleted": ("DELETE FROM log_tree", "tree-row", "the tree row (table log_tree) is missing"),
    "tree root edited": ("UPDATE log_tree SET root_hash = ?", "tree-row",
                         "the tree row's root does not match"),
    "last entry row deleted": ("DELETE FROM entry_bundles WHERE idx = 512", "entries-missing",
                               "entries 512..599 are missing"),
    "short tile": ("UPDATE tiles SET hashes = ? WHERE level = 0 AND idx = 1", "tile-differs",
                   "tile 0/1"),
    "long tile": ("UPDATE tiles SET hashes = ? WHERE level = 0 AND idx = 2",
                  "tile-differs", "tile 0/2 holds 2818 bytes, not 2816"),
    "tile deleted": ("DELETE FROM tiles WHERE level = 1", "tile-missing", "tile 1/0 is missing"),
    "garbage checkpoint note": ("UPDATE checkpoints SET note = ? WHERE size = 400",
                                "checkpoint-signature", "checkpoint 400:"),
    "checkpoint row deleted": ("DELETE FROM checkpoints WHERE size = 400", "checkpoint-missing",
                               "checkpoint 400: its checkpoint row is missing, but timestamps from "
                               "local:"),
    "leaf index state deleted": ("DELETE FROM leaf_index_state", "leaf-index",
                                 "the leaf-hash index's state row (table leaf_index_state) is missing"),
    "leaf index state beyond": ("UPDATE leaf_index_state SET size = 900", "leaf-index",
                                "covers 900 entries, beyond the tree size 600"),
}


@pytest.mark.parametrize("case", CASES)
async def test_hand_edited_rows_are_named_findings(case: str, log: Log, local_tsa: LocalTSA) -> None:
    await build(log)
    statement, kind, text = CASES[case]
    if case == "long tile":  # the stored partial tile 0/2 (88 hashes), two bytes longer
        (hashes, _), = (await log.store.read_tile_rows([(0, 2)])).values()
        PARAMS[case] = hashes + b"\x01\x02"
    await sql(log, statement, *([PARAMS[case]] if case in PARAMS else []))
    report = await audit_log(log, tsa_roots=[local_tsa.root_certificate],
                             required_tsas=[t.name for t in log.tsas])
    assert not report.ok
    found = [f for f in report.findings if f.kind == kind]
    assert any(text in str(f) for f in found), report.problems


@pytest.mark.parametrize("statement", [
    "UPDATE log_sequence SET next_index = next_index - 2",
    "DELETE FROM log_tree",
    "DELETE FROM entry_bundles WHERE idx >= 256",
    "UPDATE tiles SET hashes = substr(hashes, 1, 64) WHERE level = 0 AND idx = 0",
])
def test_cli_verify_exits_1_naming_it(statement: str, tmp_path: Path) -> None:
    """Through the console script: exit 1 ("problems found", docs/cli.md) with FAIL lines, not 70."""
    import asyncio

    home = tmp_path / "home"
    env = cli_env(home)
    cli(env, "init")
    cli(env, "append", input=b"".join(b'{"kind":"e","i":%d}\n' % i for i in range(600)))

    async def tamper() -> None:
        log = await LogHome(home).open_log()
        try:
            await sql(log, statement)
        finally:
            await log.close()

    asyncio.run(tamper())
    proc = cli(env, "verify", "--no-artefacts", ok=False)
    out = proc.stdout.decode()
    assert proc.returncode == 1, (out, proc.stderr.decode())
    assert "internal error" not in proc.stderr.decode()
    assert any(line.startswith("FAIL: ") for line in out.splitlines()), out
