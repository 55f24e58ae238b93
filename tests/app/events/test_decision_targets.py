"""Oversight decisions are indexed by what they target: the run, model, dataset version or
annotator named in the event's ``target`` (``docs/events.md``), so "every event of run X" (the
index, ``GET /api/v1/events?run=``) includes the halt, the resume and the approval of that run.

Over a real log, SQLite and PostgreSQL; the decisions are recorded as ``app.oversight`` records
them (``record(log, "oversight.decision", ...)``)."""

from __future__ import annotations

from typing import Any

import orjson

from app.accounts import create_account, create_token
from app.core.database import Database
from app.events.index import EventIndex, index_row
from app.events.recording import SYSTEM, Actor, record
from ledger.events import Pseudonymizer
from ledger.log import Log
from tests.support.asgi import serving
from tests.support.databases import database_of

ANN = Actor("pseud:" + "b" * 32, "overseer")
BOB = Actor("pseud:" + "c" * 32, "overseer")
WHY = "the reward accuracy fell below the agreed floor"


async def _decision(log: Log, actor: Actor, action: str, target: dict[str, Any], **detail: Any) -> int:
    entry = await record(log, "oversight.decision", actor, action=action, target=target, justification=WHY,
                         decision_id="dec_" + action[:4].ljust(26, "0"), **detail)
    return entry.leaf_index


async def _story(log: Log) -> dict[str, int]:
    """A run halted, resumed by a second overseer, completed, approved and released; decisions
    about other targets around it."""
    ids = {"submitted": (await record(log, "job.submitted", SYSTEM, run="run_x", dataset="ds_a",
                                      dataset_version=1)).leaf_index}
    ids["halt"] = await _decision(log, ANN, "halt", {"run": "run_x"})
    ids["other_halt"] = await _decision(log, ANN, "halt", {"run": "run_y"})
    ids["resume"] = await _decision(log, BOB, "resume", {"run": "run_x"}, halted_by="dec_halt")
    ids["completed"] = (await record(log, "run.completed", SYSTEM, run="run_x", model="model_x")).leaf_index
    ids["approve"] = await _decision(log, ANN, "approve_release", {"model": "model_x", "run": "run_x"},
                                     root="sha256:abc")
    ids["released"] = (await record(log, "model.released", ANN, model="model_x", run="run_x")).leaf_index
    ids["reject_dataset"] = await _decision(log, BOB, "reject_dataset",
                                            {"dataset": "ds_a", "dataset_version": 1})
    ids["reject_annotator"] = await _decision(log, BOB, "reject_annotator",
                                              {"annotator": "pseud:" + "d" * 32})
    return ids


def test_index_row_takes_the_target_of_a_decision() -> None:
    def row(event: dict[str, Any]) -> tuple[Any, ...]:
        return index_row(7, orjson.dumps(event))[0]

    base = {"kind": "oversight.decision", "actor": "pseud:a", "at": "2026-01-01T00:00:00Z"}
    assert row({**base, "target": {"run": "run_x"}})[2] == "run_x"
    assert row({**base, "target": {"model": "m", "run": "run_x"}})[2:6:3] == ("run_x", "m")
    assert row({**base, "target": {"dataset": "ds", "dataset_version": 3}})[3:5] == ("ds", 3)
    assert row({**base, "target": {"annotator": "pseud:d"}})[7] == "pseud:d"
    # only a decision's target, only the fields it names, never anything it does not carry
    assert row({**base, "kind": "x.y", "target": {"run": "run_x"}})[2] is None
    assert row({**base, "target": ["run_x"]})[2:6] == (None,) * 4
    assert row({**base, "target": {"run": 5, "dataset_version": "3", "annotator": None}})[2:6] == (None,) * 4
    assert row({**base, "target": {"annotator": "x" * 500}})[7] is None


async def test_the_index_finds_a_runs_decisions(db: Database, log: Log) -> None:
    ids = await _story(log)
    index = EventIndex(db, log)

    async def found(**filters: Any) -> list[int]:
        return [e.index for e in await index.query(limit=1000, **filters)]

    story = ("submitted", "halt", "resume", "completed", "approve", "released")
    assert await found(run="run_x") == [ids[k] for k in story]
    assert await found(run="run_x", kind="oversight.decision") == [ids["halt"], ids["resume"], ids["approve"]]
    assert await found(run="run_y") == [ids["other_halt"]]
    assert await found(model="model_x") == [ids["completed"], ids["approve"], ids["released"]]
    assert await found(dataset="ds_a", dataset_version=1) == [ids["submitted"], ids["reject_dataset"]]
    assert await found(annotator="pseud:" + "d" * 32) == [ids["reject_annotator"]]
    assert await index.check() == []  # what re-deriving the rows gives


async def test_the_events_api_lists_a_runs_decisions(log: Log) -> None:
    pseudonyms = Pseudonymizer(b"decision-target-test-key".ljust(32, b"."))
    db = database_of(log)
    await create_account(db, log, "aud", "auditor", "correct horse battery", pseudonymizer=pseudonyms)
    token = (await create_token(db, log, "aud", None, pseudonymizer=pseudonyms)).token
    ids = await _story(log)
    async with serving(log) as client:
        r = await client.get("/api/v1/events", params={"run": "run_x", "kind": "oversight.decision"},
                             headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        got = r.json()["events"]
        assert [e["leaf_index"] for e in got] == [ids["halt"], ids["resume"], ids["approve"]]
        assert [e["event"]["action"] for e in got] == ["halt", "resume", "approve_release"]
