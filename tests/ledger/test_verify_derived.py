"""`verify` checks the derived lookup indexes against the entries, and `reindex` restores them.

The leaf-hash index (the ledger's ``leaf_index``) answers lookups by hash; the event index (the
app's ``event_index``/``event_commitments``) answers /api/v1/events. Both are rebuilt from the
entries, so a row changed or deleted by hand is a named finding and is repairable.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from app.core.database import open_home
from app.events.index import EventIndex
from ledger._internal.local_tsa import LocalTSA
from ledger.audit import audit_log
from ledger.errors import NotFound
from ledger.home import LogHome
from ledger.log import Log
from ledger.merkle import leaf_hash
from tests.support.cli_run import cli, cli_env
from tests.support.databases import database_of
from tests.support.entry_rows import build, sql

COMMITMENT = bytes(range(32))


async def audit(log: Log, tsa: LocalTSA) -> list[tuple[str, str]]:
    report = await audit_log(log, tsa_roots=[tsa.root_certificate], required_tsas=[t.name for t in log.tsas])
    return [(f.kind, str(f)) for f in report.findings]


async def test_moved_leaf_index_row_is_found_and_rebuilt(log: Log, local_tsa: LocalTSA) -> None:
    await build(log)
    seventh = leaf_hash(await log.entry(7))
    await sql(log, "UPDATE leaf_index SET idx = 9 WHERE idx = 7")
    # the symptom: the lookup misses entry 7, while the row count is unchanged
    assert 7 not in await log.find(seventh)
    with pytest.raises(NotFound):
        await log.inclusion_proof_by_hash(seventh)
    found = await audit(log, local_tsa)
    assert [k for k, _ in found] == ["leaf-index"], found
    assert "entry 7" in found[0][1] and "entry 9" in found[0][1], found

    assert await log.rebuild_leaf_index() == 600
    assert await log.find(seventh) == [7]
    assert (await log.inclusion_proof_by_hash(seventh)).leaf_index == 7
    assert await audit(log, local_tsa) == []


async def test_leaf_index_edits_of_every_kind_are_found(log: Log, local_tsa: LocalTSA) -> None:
    await build(log)
    prefix = leaf_hash(await log.entry(20))[:8]
    await sql(log, "UPDATE leaf_index SET hash_prefix = ? WHERE idx = 3", b"\x00" * 8)  # wrong prefix
    await sql(log, "INSERT INTO leaf_index (hash_prefix, idx) VALUES (?, 21)", prefix)  # duplicate slot
    await sql(log, "INSERT INTO leaf_index (hash_prefix, idx) VALUES (?, 5000)", prefix)  # beyond
    found = dict(await audit(log, local_tsa))
    assert set(found) == {"leaf-index"}, found
    text = found["leaf-index"]
    assert "entry 3" in text and "entry 21" in text and "5000" in text, text
    await log.rebuild_leaf_index()
    assert await audit(log, local_tsa) == []


async def test_event_index_rows_are_checked_and_repaired(log: Log) -> None:
    await log.append([{"kind": "run.started", "run": f"r{i}", "at": "2026-01-01T00:00:00Z",
                       "commitment": "sha256:" + base64.b64encode(COMMITMENT).decode()} for i in range(40)])
    await log.integrate()
    index = EventIndex(database_of(log), log)
    await index.catch_up()
    assert await index.check() == []
    await sql(log, "DELETE FROM event_index WHERE idx = 5")
    await sql(log, "UPDATE event_index SET run = 'forged' WHERE idx = 6")
    await sql(log, "DELETE FROM event_commitments WHERE idx = 8")
    await sql(log, "INSERT INTO event_index (idx, kind) VALUES (77, 'x')")
    # the symptom: event 5 is hidden from queries
    assert await index.get(5) is None
    assert [e.index for e in await index.query(run="r5")] == []
    problems = await index.check()
    text = "\n".join(problems)
    for needle in ("event 5", "event 6", "event 8", "77"):
        assert needle in text, problems
    repaired = await index.repair()
    assert repaired > 0
    assert await index.check() == []
    assert (await index.get(5)) is not None
    assert [e.index for e in await index.query(run="r6")] == [6]
    assert [e.index for e in await index.query(run="forged")] == []
    assert await index.by_commitment(COMMITMENT) == list(range(40))


def test_cli_verify_and_reindex(tmp_path: Path) -> None:
    """The operator's view: `verify` exits 1 naming both indexes; `reindex` repairs; `verify` is OK."""
    home = tmp_path / "home"
    env = cli_env(home)
    cli(env, "init")
    cli(env, "append", input=b"".join(b'{"kind":"e","run":"r%d"}\n' % i for i in range(30)))

    async def tamper() -> None:
        db, log = await open_home(LogHome(home))
        try:
            await EventIndex(db, log).catch_up()
            await log.index_leaves()
            await sql(log, "UPDATE leaf_index SET idx = 9 WHERE idx = 7")
            await sql(log, "DELETE FROM event_index WHERE idx = 5")
        finally:
            await log.close()
            await db.close()

    asyncio.run(tamper())
    bad = cli(env, "verify", "--no-artefacts", ok=False)
    out = bad.stdout.decode()
    assert bad.returncode == 1, (out, bad.stderr.decode())
    fails = [line for line in out.splitlines() if line.startswith("FAIL: ")]
    assert any("[leaf-index]" in line and "entry 7" in line for line in fails), out
    assert any("[event-index]" in line and "event 5" in line for line in fails), out
    done = cli(env, "reindex")
    assert b"leaf-hash index" in done.stderr and b"event index" in done.stderr, done.stderr
    good = cli(env, "verify", "--no-artefacts", "--derived")
    assert b"OK: the log is intact" in good.stdout, good.stdout
