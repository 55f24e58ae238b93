"""``base_model_general_purpose`` in the job spec: accepted (a bool, nothing else), logged in the spec of
``job.submitted`` (and ``run.started``, which records ``TrainingSpec.to_dict()``), and what makes the
AI Act Art. 53 rule apply to the run's release."""

from __future__ import annotations

from typing import Any

import pytest

from app.compliance import ComplianceConfig, evaluate
from app.core.database import Database
from app.core.errors import AppError
from app.core.keyring import Keyring
from app.core.settings import Settings
from app.events.index import EventIndex
from app.events.recording import event
from app.jobs import submit
from app.jobs.queue import LocalQueue
from ledger.log import Log
from tests.support.compliance_log import ALICE, BOB, decision
from tests.support.databases import database_of
from tests.support.jobs import ADMIN, dataset, events
from trainers.spec import JobSpecError, TrainingSpec

SPEC: dict[str, Any] = {"kind": "dpo", "base_model": "example-org/base-7b", "learning_rate": 1e-5}


def test_the_spec_takes_the_flag_as_a_bool() -> None:
    spec = TrainingSpec.from_dict({**SPEC, "dataset": "ds", "base_model_general_purpose": True})
    assert spec.base_model_general_purpose is True and spec.to_dict()["base_model_general_purpose"] is True
    assert TrainingSpec.from_dict({**SPEC, "dataset": "ds", "base_model_general_purpose": False}
                                  ).to_dict()["base_model_general_purpose"] is False
    assert "base_model_general_purpose" not in TrainingSpec.from_dict({**SPEC, "dataset": "ds"}).to_dict()
    for bad in ("yes", 1, "true"):
        with pytest.raises(JobSpecError, match="base_model_general_purpose must be true or false"):
            TrainingSpec.from_dict({**SPEC, "dataset": "ds", "base_model_general_purpose": bad})


async def _art53(db: Database, log: Log) -> Any:
    config = await ComplianceConfig.load(db, log, Settings.load())
    results, _ = await evaluate(db, log, EventIndex(db, log), config=config)
    return next(r for r in results if r.rule == "ai-act.art53.gpai")


async def _release(log: Log, run: str, model: str) -> int:
    done = await log.append([
        event("run.completed", ALICE, run=run, model=model, steps=1, files={}, root="sha256:" + "00" * 32),
        decision(BOB, "approve_release", {"model": model, "run": run}, f"dec_{run}"),
        event("model.released", ALICE, model=model, run=run, approval=f"dec_{run}",
              root="sha256:" + "00" * 32)])
    await log.integrate()
    return done[-1].leaf_index


async def test_a_submitted_flag_makes_art53_apply(log: Log, keyring: Keyring) -> None:
    db = database_of(log)
    ds = await dataset(log, keyring)
    plain = await submit(db, log, keyring, LocalQueue(), {**SPEC, "dataset": ds}, ADMIN)
    await _release(log, plain.run, "model_plain")
    assert (await _art53(db, log)).status == "not_applicable"

    flagged = await submit(db, log, keyring, LocalQueue(), {**SPEC, "dataset": ds,
                                                            "base_model_general_purpose": True}, ADMIN)
    (submitted,) = await events(log, run=flagged.run, kind="job.submitted")
    assert submitted["spec"]["base_model_general_purpose"] is True
    released = await _release(log, flagged.run, "model_gpai")
    res = await _art53(db, log)
    assert res.status == "fail" and "model_gpai" in res.summary and "model_plain" not in res.summary
    assert {submitted["_i"], released} <= set(res.entries)

    with pytest.raises(AppError, match="base_model_general_purpose"):
        await submit(db, log, keyring, LocalQueue(),
                     {**SPEC, "dataset": ds, "base_model_general_purpose": "yes"}, ADMIN)
