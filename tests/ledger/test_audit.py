"""The self-audit: any edited, deleted or reordered row makes it fail, saying where."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from ledger._internal.local_tsa import LocalTSA
from ledger.audit import audit_log
from ledger.log import Log
from tests.support.entry_rows import (
    add_entry,
    build,
    corrupt_framing,
    delete_entry,
    set_entry,
    sql,
    swap_entries,
)

Tamper = Callable[[Log], Awaitable[None]]


async def audit(log: Log, tsa: LocalTSA) -> list[str]:
    report = await audit_log(log, tsa_roots=[tsa.root_certificate],
                             required_tsas=[t.name for t in log.tsas])
    return report.problems


async def test_intact_log_passes(log: Log, local_tsa: LocalTSA) -> None:
    await build(log)
    assert await audit(log, local_tsa) == []


async def _edit_entry(log: Log) -> None:
    await set_entry(log, 5, b'{"kind":"forged"}')


async def _edit_entry_and_checkpoints(log: Log) -> None:
    await set_entry(log, 150, b'{"kind":"forged"}')


async def _delete_entry(log: Log) -> None:
    await delete_entry(log, 7)


async def _reorder_entries(log: Log) -> None:
    await swap_entries(log, 3)


async def _edit_tile(log: Log) -> None:
    await sql(log, "UPDATE tiles SET hashes = ? WHERE level = 0 AND idx = 1", b"\x00" * 8192)


async def _edit_inner_levels(log: Log) -> None:
    await sql(log, "UPDATE tiles SET inner_levels = ? WHERE level = 0 AND idx = 0", b"\x07" * 8160)


async def _edit_edge_inner_levels(log: Log) -> None:
    # the partial tile 0/2 (88 hashes) keeps its 85 inner nodes, which cold proofs read
    await sql(log, "UPDATE tiles SET inner_levels = ? WHERE level = 0 AND idx = 2", b"\x07" * 85 * 32)


async def _forge_checkpoint_root(log: Log) -> None:
    await sql(log, "UPDATE checkpoints SET root_hash = ? WHERE size = 400", b"\x01" * 32)


async def _break_signature(log: Log) -> None:
    cp = await log.checkpoint(200)
    note = cp.note[:-10] + (b"A" if cp.note[-10:-9] != b"A" else b"B") + cp.note[-9:]
    await sql(log, "UPDATE checkpoints SET note = ? WHERE size = 200", note)


async def _drop_timestamp(log: Log) -> None:
    await sql(log, "DELETE FROM timestamps WHERE size = 400")


async def _corrupt_timestamp(log: Log) -> None:
    der = await log.timestamp(600)
    await sql(log, "UPDATE timestamps SET response = ? WHERE size = 600", der[:-3] + b"\x00\x00\x00")


async def _extra_entry(log: Log) -> None:
    await add_entry(log, 600, b"{}")


async def _break_framing(log: Log) -> None:
    await corrupt_framing(log, 300)


async def _drop_index_row(log: Log) -> None:
    await sql(log, "DELETE FROM leaf_index WHERE idx = 10")


CASES: dict[str, tuple[Tamper, str]] = {
    "edited entry": (_edit_entry, "tile 0/0: hash 5 (entry 5) differs"),
    "edited entry, root": (_edit_entry_and_checkpoints,
                           "3 checkpoints' roots do not match the entries (tree rewritten?); first sizes "
                           "200, 400, 600"),
    "deleted entry": (_delete_entry, "entry 7 is missing"),
    "reordered entries": (_reorder_entries, "tile 0/0: hash 3 (entry 3) differs"),
    "edited tile": (_edit_tile, "tile 0/1: hash 0 (entry 256) differs"),
    "edited inner levels": (_edit_inner_levels, "tile 0/0: its stored inner levels differ"),
    "edited edge inner levels": (_edit_edge_inner_levels, "tile 0/2: its stored inner levels differ"),
    "forged checkpoint root": (_forge_checkpoint_root, "checkpoint 400: root does not match"),
    "broken signature": (_break_signature, "checkpoint 200:"),
    "dropped timestamp": (_drop_timestamp, "checkpoint 400: no timestamp from"),
    "corrupt timestamp": (_corrupt_timestamp, "checkpoint 600: timestamp from"),
    "row beyond the sequence": (_extra_entry, "beyond the sequence counter"),
    "broken entry framing": (_break_framing, "the entry row at index 256 is corrupt"),
    "deleted index row": (_drop_index_row, "the leaf-hash index is wrong: entry 10 has no row"),
}


@pytest.mark.parametrize("tamper", [None, _edit_entry, _delete_entry])
async def test_parallel_audit_agrees(tamper: Tamper | None, log: Log, local_tsa: LocalTSA) -> None:
    """The process-pool path (used for large logs) finds the same as the in-process one."""
    await build(log)
    if tamper is not None:
        await tamper(log)
    kwargs = {"tsa_roots": [local_tsa.root_certificate], "required_tsas": [t.name for t in log.tsas]}
    one = await audit_log(log, workers=1, **kwargs)
    two = await audit_log(log, workers=2, **kwargs)
    assert one.problems == two.problems
    assert one.ok == (tamper is None)


@pytest.mark.parametrize("case", CASES)
async def test_tampering_is_found(case: str, log: Log, local_tsa: LocalTSA) -> None:
    await build(log)
    tamper, expected = CASES[case]
    await tamper(log)
    problems = await audit(log, local_tsa)
    assert any(expected in p for p in problems), problems
