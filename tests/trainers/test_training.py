"""Audited training runs on the real log: reward model and DPO, with and without DP-SGD.

Each run goes through ``LogSink`` into a real ``ledger.Log`` (SQLite and PostgreSQL) from a
training thread, as the worker does it; the tests read the events back from the log.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

pytest.importorskip("torch")


async def _events(log, run: str) -> list[dict]:
    size = await log.sequenced_size()
    rows = await log.entries(0, size)
    return [e for e in map(orjson.loads, rows) if e.get("run") == run]


def _spec(kind: str, model: Path, dp: dict | None, **extra):
    from trainers.spec import TrainingSpec

    return TrainingSpec.from_dict({"kind": kind, "base_model": str(model), "dataset": "ds_test",
                                   "dataset_version": 1, "learning_rate": 1e-3, "batch_size": 8,
                                   "save_steps": 2, "dp": dp, **extra})


def _callback(log, run: str, spec):
    from trainers.callback import AuditCallback
    from trainers.sinks import LogSink

    sink = LogSink(log, asyncio.get_running_loop())
    return AuditCallback(sink, run=run, spec=spec, dataset_root="sha256:" + "ab" * 32)


class StepCounter:
    """A RunControl that asks to halt (or raises) once ``after`` steps have been polled."""

    def __init__(self, after: int, error: Exception | None = None) -> None:
        self.after, self.error, self.polls = after, error, 0
        self.halt_decision = 41

    def should_halt(self) -> bool:
        self.polls += 1
        if self.polls >= self.after and self.error is not None:
            raise self.error
        return self.polls >= self.after


@pytest.mark.parametrize(("kind", "dp"), [
    ("reward_model", None), ("reward_model", {"noise_multiplier": 1.0}),
    ("dpo", None), ("dpo", {"target_epsilon": 4.0, "delta": 1e-5}),
])
async def test_audited_run_on_the_log(kind, dp, log, tiny_model, pairs, tmp_path):  # noqa: F811
    from trainers.hashing import hash_directory
    from trainers.spec import epsilon_after
    from trainers.training import train

    spec = _spec(kind, tiny_model, dp)
    audit = _callback(log, "run_" + kind, spec)
    result = await asyncio.to_thread(train, spec, pairs, tmp_path / "out", audit=audit)
    events = await _events(log, "run_" + kind)
    kinds = [e["kind"] for e in events]

    assert result.status == "completed" and result.steps == 4  # 32 pairs, batch 8, 1 epoch
    assert kinds[0] == "run.started" and kinds[-1] == "run.completed"
    started = events[0]
    base_files, base_root = hash_directory(tiny_model)
    assert started["base_model"] == {"root": base_root, "files": base_files}
    assert started["dataset"] == "ds_test" and started["dataset_version"] == 1
    assert started["config_sha256"].startswith("sha256:") and started["spec"]["kind"] == kind
    assert {"torch", "transformers", "trl"} <= set(started["libraries"])

    steps = [s for e in events if e["kind"] == "run.metrics" for s in e["steps"]]
    assert sorted({s["step"] for s in steps}) == [1, 2, 3, 4]  # every step
    checkpoints = [e for e in events if e["kind"] == "run.checkpoint"]
    assert [c["step"] for c in checkpoints] == [2, 4]
    for c in checkpoints:  # the hashes on the log are the files on disk
        assert hash_directory(tmp_path / "out" / f"checkpoint-{c['step']}") == (c["files"], c["root"])
    completed = events[-1]
    assert (completed["files"], completed["root"]) == hash_directory(result.output_dir)
    assert completed["root"] == result.root and completed["steps"] == 4

    privacy = [e for e in events if e["kind"] == "run.privacy"]
    if dp is None:
        assert started["dp"] == {"enabled": False} and "notice" not in started and not privacy
        assert "epsilon" not in completed and any("grad_norm" in s for s in steps)
        return
    assert started["dp"]["unit"] == "preference_pair" and "not covered" in started["notice"]
    assert not any("grad_norm" in key for s in steps for key in s)  # no non-private norm leaks
    assert [p["step"] for p in privacy] == [1, 2, 3, 4]
    sigma, rate = started["dp"]["noise_multiplier"], started["dp"]["sample_rate"]
    for p in privacy:  # ε on the log is the accountant's
        assert p["accountant"] == "prv" and p["delta"] == 1e-5
        assert p["epsilon"] == pytest.approx(epsilon_after(sigma, rate, p["step"], 1e-5), rel=1e-9)
    assert completed["epsilon"] == privacy[-1]["epsilon"] == result.epsilon
    if "target_epsilon" in dp:
        assert result.epsilon == pytest.approx(4.0, rel=0.02)


SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # both DBs: above


@SQLITE_ONLY
@pytest.mark.parametrize("dp", [None, {"noise_multiplier": 1.0}])
async def test_halt_stops_within_a_step_and_saves_a_checkpoint(dp, log, tiny_model, pairs, tmp_path):  # noqa: F811
    from trainers.hashing import hash_directory
    from trainers.training import train

    spec = _spec("reward_model", tiny_model, dp, epochs=3, save_steps=None)
    audit, control = _callback(log, "run_halt", spec), StepCounter(after=2)
    result = await asyncio.to_thread(train, spec, pairs, tmp_path / "out", audit=audit, control=control)
    events = await _events(log, "run_halt")

    assert result.status == "halted" and result.steps == 2  # 12 steps planned
    assert events[-1]["kind"] == "run.halted"
    (checkpoint,) = [e for e in events if e["kind"] == "run.checkpoint"]
    halted = events[-1]
    assert checkpoint["step"] == halted["step"] == 2 and halted["decision"] == 41
    assert halted["checkpoint_root"] == checkpoint["root"] == result.root
    assert hash_directory(result.output_dir) == (checkpoint["files"], checkpoint["root"])
    assert not any(e["kind"] == "run.completed" for e in events)


@SQLITE_ONLY
@pytest.mark.parametrize("dp", [None, {"noise_multiplier": 1.0}])
async def test_exception_mid_run_records_run_failed(dp, log, tiny_model, pairs, tmp_path):  # noqa: F811
    from trainers.training import train

    spec = _spec("dpo", tiny_model, dp, save_steps=None)
    audit = _callback(log, "run_crash", spec)
    control = StepCounter(after=3, error=RuntimeError("disk on fire"))
    with pytest.raises(RuntimeError, match="disk on fire"):
        await asyncio.to_thread(train, spec, pairs, tmp_path / "out", audit=audit, control=control)
    events = await _events(log, "run_crash")
    assert events[0]["kind"] == "run.started"
    assert events[-1]["kind"] == "run.failed"
    assert events[-1]["error"] == "RuntimeError: disk on fire" and events[-1]["step"] == 3
    steps = [s["step"] for e in events if e["kind"] == "run.metrics" for s in e["steps"]]
    assert steps[:2] == [1, 2] and steps == list(range(1, len(steps) + 1))  # 3 too, under DP
