"""A halted-then-resumed run is one run in the compliance report: one entry with its segments, the
run's latest ε (never a sum over segments), global steps; and the Art. 73 part says what is tracked."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from app.compliance.engine import evaluate
from app.compliance.reports import build_report
from app.core.database import Database
from app.core.settings import Settings
from app.events.index import EventIndex
from app.events.recording import event
from ledger.log import Log
from tests.support.compliance_log import ALICE, BOB, DS, WORKER, build_log, decision, run_events, settle

RUN = "run_cccc"


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _checkpoint(step: int) -> dict[str, Any]:
    return event("run.checkpoint", WORKER, run=RUN, step=step, object_prefix=f"runs/{RUN}/step-{step}/",
                 files={"model.safetensors": _digest(f"ckpt {step}")}, root=_digest(f"root {step}"))


def _privacy(step: int, epsilon: float) -> dict[str, Any]:
    return event("run.privacy", WORKER, run=RUN, step=step, epsilon=epsilon, delta=1e-5, accountant="prv")


async def _resumed_run(log: Log, *, complete: bool = True) -> dict[str, int]:
    """run_cccc: segment 1 to step 119, halted by Alice, resumed by Bob as segment 2 to step 200.
    Steps are global and every ε is the run's cumulative ε, as the worker records them."""
    at: dict[str, int] = {}
    first = [e for e in run_events(RUN, DS, 1, "model_c", eps=[], complete=False)
             if e["kind"] != "run.checkpoint"]
    entries = await log.append(first)
    at["started_1"] = next(e.leaf_index for e, ev in zip(entries, first, strict=True)
                           if ev["kind"] == "run.started")
    started = next(ev for ev in first if ev["kind"] == "run.started")
    await log.append([_privacy(50, 0.31), _checkpoint(25), _checkpoint(50), _privacy(100, 0.52),
                      _checkpoint(75), _checkpoint(100), _checkpoint(119)])
    (halt,) = await log.append([decision(ALICE, "halt", {"run": RUN}, "dec_halt3")])
    at["halt"] = halt.leaf_index
    (halted,) = await log.append([event("run.halted", WORKER, run=RUN, step=119, decision=halt.leaf_index,
                                        checkpoint_root=_digest("root 119"))])
    at["halted"] = halted.leaf_index
    (resume,) = await log.append([decision(BOB, "resume", {"run": RUN}, "dec_resume3",
                                           halted_by="dec_halt3")])
    at["resume"] = resume.leaf_index
    second = {k: v for k, v in started.items() if k not in ("kind", "actor", "role", "at")}
    second["base_model"] = {"root": _digest("root 119"), "files": {"model.safetensors": _digest("ckpt 119")}}
    (started_2,) = await log.append([event(
        "run.started", WORKER, **second, segment=2,
        resumed_from={"step": 119, "checkpoint_root": _digest("root 119"), "decision": resume.leaf_index})])
    at["started_2"] = started_2.leaf_index
    tail = [_privacy(150, 0.81), _checkpoint(150), _checkpoint(175), _privacy(200, 0.996), _checkpoint(200)]
    if complete:
        tail.append(event("run.completed", WORKER, run=RUN, model="model_c", steps=200, epsilon=0.996,
                          files={"model.safetensors": _digest("model_c")}, root=_digest("model_c root")))
    entries = await log.append(tail)
    at["last"] = entries[-1].leaf_index
    await settle(log)
    return at


async def _data(db: Database, log: Log, scope: object) -> dict[str, Any]:
    report = await build_report(db, log, EventIndex(db, log), scope, settings=Settings.load())
    return orjson.loads(report.json_bytes())


def _texts(statements: list[dict[str, Any]]) -> str:
    return "\n".join(s["text"] for s in statements)


async def test_a_resumed_run_is_one_entry_with_its_segments(db: Database, log: Log) -> None:
    await build_log(log)
    at = await _resumed_run(log)
    data = await _data(db, log, {"run": RUN})
    (run,) = data["dp_budget"]["runs"]
    assert run["run"] == RUN and run["epsilon"] == 0.996 and run["source"] == "run.completed"
    assert [(s["segment"], s["from_step"], s["resumed_by"]) for s in run["segments"]] == [
        (1, 0, None), (2, 119, at["resume"])]
    assert {at["started_1"], at["started_2"], at["resume"]} <= set(run["entries"])
    (ds,) = data["dp_budget"]["datasets"]
    assert abs(ds["epsilon_spent"] - (2.9 + 3.0 + 0.996)) < 1e-9 and ds["runs"].count(RUN) == 1
    dp = _texts(data["dp_budget"]["statements"])
    assert dp.count(f"Run {RUN} ") == 1 and "ε = 0.996" in dp and "10.98" not in dp
    said = ("in 2 segments (segment 1 from step 0; segment 2 from step 119, resumed by decision "
            f"#{at['resume']})")
    assert said in dp
    annex = {s["number"]: s["statements"] for s in data["annex_iv"]}
    general = _texts(annex[1])
    assert f"Run {RUN} produced model model_c after 200 steps" in general
    development = [s for s in annex[2] if s["text"].startswith(f"Run {RUN}: pre-trained")]
    assert len(development) == 1 and {at["started_1"], at["started_2"]} <= set(development[0]["entries"])
    monitoring = [s for s in annex[3] if s["text"].startswith(f"Run {RUN} ")]
    assert len(monitoring) == 1 and {at["started_1"], at["started_2"]} <= set(monitoring[0]["entries"])
    assert "resumed by decision" in monitoring[0]["text"]
    lifecycle = _texts(annex[6])
    assert f"Run {RUN} saved 8 training checkpoints (steps 25 to 200)" in lifecycle


async def test_an_unfinished_resumed_run_takes_its_highest_steps_privacy(db: Database, log: Log) -> None:
    await build_log(log)
    await _resumed_run(log, complete=False)
    data = await _data(db, log, {"run": RUN})
    (run,) = data["dp_budget"]["runs"]
    assert run["epsilon"] == 0.996 and run["source"] == "run.privacy at step 200"


async def test_rules_count_runs_not_segments(db: Database, log: Log) -> None:
    await build_log(log)
    await _resumed_run(log)
    size = await settle(log)
    results, _ = await evaluate(db, log, EventIndex(db, log), settings=Settings.load(), tree_size=size)
    by_rule = {r.rule: r for r in results}
    sheet = by_rule["ai-act.art10.datasheet"]
    assert sheet.status == "pass" and "all 3 training runs" in sheet.summary
    budget = by_rule["gdpr.art25.dp-budget"]
    assert budget.status == "pass" and "ε 6.896 of 8" in budget.summary


async def test_art73_says_what_is_tracked_and_lists_the_scope_freezes(db: Database, log: Log) -> None:
    await build_log(log)
    (frozen,) = await log.append([event(
        "incident.frozen", ALICE, incident="inc_" + "a" * 26, reason="unexpected outputs after release",
        scope={"kind": "model", "model": "model_a"}, object_key="incidents/inc_aaa/bundle.zip",
        sha256=_digest("zip"), manifest_sha256=_digest("manifest"), entries=12, tree_size=30, held=3,
        held_root=_digest("held"), missing=0, changed=0, halted=["dec_halt9"])])
    await settle(log)
    data = await _data(db, log, {"model": "model_a"})
    art73 = data["art73_incidents"]
    text = _texts(art73["statements"])
    assert "inc_" + "a" * 26 in text and "legal hold" in text and "unexpected outputs" in text
    assert any(frozen.leaf_index in s["entries"] for s in art73["statements"])
    covered = " ".join(data["not_covered"])
    assert "incident.frozen" in covered and "legal hold" in covered
    assert "notification deadlines" in covered and "market surveillance authority" in covered
    assert "are not tracked" not in covered.split("Art. 73")[1].split(".")[0]
    report = await build_report(db, log, EventIndex(db, log), {"model": "model_a"}, settings=Settings.load())
    page = report.html_bytes().decode()
    assert 'id="incidents"' in page and "Art. 73 serious incidents: evidence freezes" in page
    assert "inc_" + "a" * 26 in page and f'href="/log/v1/proof/{frozen.leaf_index}"' in page
    other = await _data(db, log, {"run": "run_bbbb"})
    assert "No incident was frozen" in _texts(other["art73_incidents"]["statements"])
