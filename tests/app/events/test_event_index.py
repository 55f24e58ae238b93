"""The event index (``app.events.index``) on a real log, SQLite and PostgreSQL.

Expected results are computed from the events themselves with plain Python predicates, so a
filter that matched too much or too little fails.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from app.core.database import Database
from app.events.index import MAX_VALUE, EventIndex, commitments_of, index_row
from ledger.canonical import encode_event
from ledger.events import commit
from ledger.log import Log
from ledger.storage import Store
from tests.support.event_corpus import KINDS, T0, corpus


async def _append(log: Log, events: list[dict[str, Any]]) -> int:
    first = (await log.append(events))[0].leaf_index
    return first


def _where(base: int, events: list[dict[str, Any]], pred: Callable[[dict[str, Any]], bool]) -> list[int]:
    return [base + i for i, e in enumerate(events) if pred(e)]


async def _indices(index: EventIndex, **filters: Any) -> list[int]:
    return [e.index for e in await index.query(limit=10_000, **filters)]


async def test_every_filter_and_combinations(db: Database, log: Log) -> None:
    events = corpus(300)
    base = await _append(log, events)
    index = EventIndex(db, log)
    assert await index.catch_up() == base + len(events)
    single: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
        ({"kind": "run.started"}, lambda e: e["kind"] == "run.started"),
        ({"kind": ["run.started", "dataset.record"]},
         lambda e: e["kind"] in ("run.started", "dataset.record")),
        ({"run": "run_b"}, lambda e: e.get("run") == "run_b"),
        ({"dataset": "ds_x"}, lambda e: e.get("dataset") == "ds_x"),
        ({"dataset_version": 2}, lambda e: e.get("dataset_version") == 2),
        ({"dataset": "ds_y", "dataset_version": 3},
         lambda e: e.get("dataset") == "ds_y" and e.get("dataset_version") == 3),
        ({"model": "model_2"}, lambda e: e.get("model") == "model_2"),
        ({"actor": "pseud:bb"}, lambda e: e["actor"] == "pseud:bb"),
        ({"annotator": "pseud:c1"}, lambda e: e.get("annotator") == "pseud:c1"),
        ({"kind": "dataset.record", "actor": "system", "annotator": "pseud:c2"},
         lambda e: (e["kind"] == "dataset.record" and e["actor"] == "system"
                    and e.get("annotator") == "pseud:c2")),
        ({"run": "run_a", "model": "model_1", "since": T0 + timedelta(minutes=50)},
         lambda e: e.get("run") == "run_a" and e.get("model") == "model_1" and e["i"] >= 50),
        ({"run": "run_nope"}, lambda e: False),
        ({"kind": []}, lambda e: False),
    ]
    for filters, pred in single:
        expected = _where(base, events, pred)
        assert await _indices(index, **filters) == expected, filters
        if expected:
            assert await _indices(index, descending=True, **filters) == expected[::-1], filters
    assert len(await _indices(index)) == base + len(events)  # no filter: everything

    [hit] = await index.query(run="run_c", limit=1)
    assert hit.event == orjson.loads(hit.data) and hit.event["run"] == "run_c"
    assert hit.kind == hit.event["kind"] and hit.at == datetime.fromisoformat(hit.event["at"])
    assert hit.data == await log.entry(hit.index)
    with pytest.raises(ValueError, match="limit"):
        await index.query(limit=0)


async def test_paging_with_cursors_both_ways(db: Database, log: Log) -> None:
    events = corpus(230, seed=3)
    base = await _append(log, events)
    index = EventIndex(db, log)
    expected = _where(base, events, lambda e: e.get("run") != "run_nope" and e["kind"] != "run.metrics")
    kinds = [k for k in KINDS if k != "run.metrics"]
    for descending in (False, True):
        seen: list[int] = []
        after: int | None = None
        while True:
            page = await index.query(kind=kinds, after=after, limit=17, descending=descending)
            assert len(page) <= 17
            if not page:
                break
            seen += [e.index for e in page]
            after = page[-1].index
        assert seen == (expected[::-1] if descending else expected)
    # The cursor is exclusive in both directions.
    mid = expected[len(expected) // 2]
    assert [e.index for e in await index.query(kind=kinds, after=mid, limit=2)] == [
        i for i in expected if i > mid][:2]
    assert [e.index for e in await index.query(kind=kinds, after=mid, limit=2, descending=True)] == [
        i for i in expected if i < mid][::-1][:2]


async def test_time_ranges(db: Database, log: Log) -> None:
    at = [
        "2026-11-25T10:00:00.000Z",
        "2026-11-25T12:00:00.500+02:00",  # = 10:00:00.500 UTC
        "2026-11-25T10:00:01Z",
        "2026-11-25T10:30:00.123456Z",
        "2026-11-25T11:00:00",  # no offset: taken as UTC
        "yesterday",  # unparseable: no time
        "2026-11-25T10:00:00.000Z",
    ]
    events: list[dict[str, Any]] = [{"kind": "t", "at": a, "n": n} for n, a in enumerate(at)]
    events.append({"kind": "t", "n": len(at)})  # no "at" at all
    events.append({"kind": "t", "at": 1764064800, "n": len(at) + 1})  # a number is not a time
    events.append({"kind": "t", "at": "9999-12-31T23:59:59-14:00", "n": len(at) + 2})  # year 10000 in UTC
    base = await _append(log, events)
    index = EventIndex(db, log)

    def t(h: int, m: int, s: int = 0, us: int = 0) -> datetime:
        return datetime(2026, 11, 25, h, m, s, us, tzinfo=UTC)

    def ns(hits: list[Any]) -> list[int]:
        return [e.index - base for e in hits]

    got = await index.query(kind="t", limit=100)
    assert [e.at for e in got] == [t(10, 0), t(10, 0, 0, 500_000), t(10, 0, 1), t(10, 30, 0, 123456),
                                   t(11, 0), None, t(10, 0), None, None, None]
    assert ns(await index.query(since=t(10, 0), until=t(10, 0, 1))) == [0, 1, 6]  # until is exclusive
    assert ns(await index.query(since=t(10, 0, 0, 500_000))) == [1, 2, 3, 4]  # since is inclusive
    assert ns(await index.query(until=t(10, 0))) == []
    assert ns(await index.query(since=t(10, 30, 0, 123456), until=t(10, 30, 0, 123457))) == [3]
    plus2 = timezone(timedelta(hours=2))
    assert ns(await index.query(since=datetime(2026, 11, 25, 12, 30, tzinfo=plus2))) == [3, 4]
    assert ns(await index.query(since=datetime(2026, 11, 25, 10, 59))) == [4]  # naive: UTC
    assert ns(await index.query(since=t(9, 0), descending=True, limit=2)) == [6, 4]


async def test_commitments_nested_and_in_lists(db: Database, log: Log) -> None:
    c = [commit(f"record {i}")[0] for i in range(6)]
    short = "sha256:" + base64.b64encode(b"\x01" * 31).decode()
    events: list[dict[str, Any]] = [
        {"kind": "dataset.record", "commitment": str(c[0])},
        {"kind": "x", "outer": {"deeper": [{"salt_commitment": str(c[1])}]}},
        {"kind": "x", "commitments": [str(c[2]), str(c[3]), 5, "sha256:bad!"]},
        {"kind": "x", "nested": {"commitments": [str(c[4])]}, "commitment": str(c[0])},
        {"kind": "x", "commitmentx": str(c[5]), "other": str(c[5]), "list": [str(c[5])]},  # other keys
        {"kind": "x", "commitment": short, "a_commitment": "sha1:" + str(c[5])[7:],
         "b_commitment": str(c[5])[:-2] + "é=", "commitments": [str(c[5])[:-1] + "==", str(c[5]) + "\n"]},
        {"kind": "x", "commitment": str(c[1]), "b_commitment": str(c[1])},  # twice in one entry: once
    ]
    base = await _append(log, events)
    index = EventIndex(db, log)
    found = {i: await index.by_commitment(x.digest) for i, x in enumerate(c)}
    assert found == {0: [base, base + 3], 1: [base + 1, base + 6], 2: [base + 2], 3: [base + 2],
                     4: [base + 3], 5: []}
    assert await index.by_commitment(hashlib.sha256(b"never").digest()) == []
    with pytest.raises(ValueError, match="32 bytes"):
        await index.by_commitment(b"\x00" * 31)
    deep: Any = {"commitment": str(c[5])}
    for _ in range(3000):  # deeper than Python's recursion limit
        deep = [deep]
    assert commitments_of({"kind": "x", "d": deep}) == {c[5].digest}
    async with db.engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT COUNT(*) FROM event_commitments"))).scalar_one()
    assert rows == sum(len(v) for v in found.values())


async def test_entries_without_the_envelope(db: Database, log: Log) -> None:
    raw = [b"not json at all", b"[1,2,3]", b'"a string"', b"{}", b'{"kind":5,"run":["x"]}',
           encode_event({"kind": "k" * (MAX_VALUE + 1), "run": "r" * (MAX_VALUE + 1)}),
           encode_event({"kind": "nul", "run": "a\x00b", "dataset": "ds", "dataset_version": True}),
           b'{"dataset_version":18446744073709551615,"kind":"big","model":{"m":1}}',  # beyond int64
           encode_event({"kind": "k" * MAX_VALUE, "run": "r" * MAX_VALUE, "dataset_version": -4})]
    base = (await log.append_entries(raw))[0].leaf_index
    index = EventIndex(db, log)
    assert await index.catch_up() == base + len(raw)
    got = [await index.get(base + i) for i in range(len(raw))]
    assert all(e is not None for e in got)
    assert [e.kind for e in got if e] == ["", "", "", "", "", "", "nul", "big", "k" * MAX_VALUE]
    assert [e.event for e in got[:5] if e] == [{}, {}, {}, {}, {"kind": 5, "run": ["x"]}]
    assert [e.data for e in got if e] == raw
    assert await _indices(index, kind="") == [base + i for i in range(6)]
    assert await _indices(index, kind="k" * MAX_VALUE) == [base + 8]
    assert await _indices(index, run="r" * MAX_VALUE) == [base + 8]
    assert await _indices(index, dataset_version=-4) == [base + 8]
    # Values no index can hold are not indexed; asking for one finds nothing and is no error.
    assert await _indices(index, kind="k" * (MAX_VALUE + 1)) == []
    assert await _indices(index, run="r" * (MAX_VALUE + 1)) == []
    assert await _indices(index, run="a\x00b") == []
    assert await _indices(index, run="\ud800") == []
    assert await _indices(index, kind=["\ud800", "nul"]) == [base + 6]
    assert await _indices(index, dataset="ds") == [base + 6]
    assert await _indices(index, dataset_version=1) == []
    assert await _indices(index, dataset_version=2**63) == []
    assert await index.get(base + len(raw)) is None
    assert await index.get(-1) is None
    assert index_row(0, b"\xff\xfe")[0] == (0, "", None, None, None, None, None, None, None)


async def test_stays_current_and_resumes_from_the_watermark(db: Database, log: Log) -> None:
    index = EventIndex(db, log)
    assert await index.catch_up() == await log.sequenced_size()
    first = await _append(log, [{"kind": "a", "run": "r1"}])
    # query catches up by itself: an event is found as soon as its append returns
    assert await _indices(index, run="r1") == [first]
    await _append(log, [{"kind": "a", "run": "r1"}])
    assert await _indices(index, run="r1") == [first, first + 1]
    ev = await index.get(first + 1)
    assert ev is not None and ev.event == {"kind": "a", "run": "r1"} and ev.at is None
    # A second instance (another process) reads the watermark and re-indexes nothing.
    other = EventIndex(db, log)
    async with db.engine.connect() as conn:
        mark = (await conn.execute(sa.text("SELECT size FROM event_index_state"))).scalar_one()
    assert mark == first + 2 == await other.catch_up()


async def _row_counts(db: Database) -> tuple[int, int, int, int]:
    async with db.engine.connect() as conn:
        rows, distinct, lo, hi = (await conn.execute(sa.text(
            "SELECT COUNT(*), COUNT(DISTINCT idx), MIN(idx), MAX(idx) FROM event_index"))).one()
    return int(rows), int(distinct), int(lo), int(hi)


async def test_concurrent_catch_up_one_row_per_entry(database_url: str, db: Database, log: Log) -> None:
    """Two indexers with their own connection pools (as two processes) while appends go on."""
    others = [Database.open(database_url), Database.open(database_url)]
    try:
        logs = [Log(Store(d.engine), log.signer) for d in others]
        indexes = [EventIndex(d, lg, page=211) for d, lg in zip(others, logs, strict=True)]
        c = commit("shared")[0]
        events = [{"kind": "dataset.record", "i": i, "commitment": str(c) if i % 100 == 0 else None}
                  for i in range(6000)]
        events = [{k: v for k, v in e.items() if v is not None} for e in events]

        async def appender() -> None:
            for k in range(0, len(events), 500):
                await log.append(events[k : k + 500])
                await asyncio.sleep(0)

        async def indexer(ix: EventIndex) -> None:
            for _ in range(40):
                await ix.catch_up()
                await asyncio.sleep(0.005)

        await asyncio.gather(appender(), *(indexer(ix) for ix in indexes))
        await asyncio.gather(*(ix.catch_up() for ix in indexes))
        size = await log.sequenced_size()
        assert size == len(events)
        assert await _row_counts(db) == (size, size, 0, size - 1)
        assert await indexes[0].by_commitment(c.digest) == list(range(0, size, 100))
        assert [e.event["i"] for e in await indexes[1].query(after=4000, limit=3)] == [4001, 4002, 4003]
    finally:
        for d in others:
            await d.close()


async def test_read_entries_at(db: Database, log: Log) -> None:
    await log.append([{"kind": "e", "n": n} for n in range(2500)])
    wanted = [2499, 3, 1000, 3, 1999, 0, 5000, 2001]
    got = await log.entries_at(wanted)
    assert sorted(got) == [0, 3, 1000, 1999, 2001, 2499]  # 5000 does not exist
    assert all(orjson.loads(v)["n"] == k for k, v in got.items())
    many = await log.entries_at(range(0, 2500, 2))  # over one statement's worth
    assert len(many) == 1250 and many[1998] == await log.entry(1998)
    assert await log.entries_at([]) == {}
