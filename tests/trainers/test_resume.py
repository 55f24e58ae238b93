"""A true resume: a run halted at step k and resumed from that checkpoint ends where the same run
without a halt ends: same weights, same ε, one global step count over both segments.

The resumed segment reads its checkpoint from a directory of its own (``resume``), as the worker
downloads it there. Events go to a :class:`MemorySink` (the sink is not what is tested here).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

STEPS = 6  # 32 pairs, batch 8: 4 steps an epoch, so the resumed segment crosses an epoch


class HaltAt:
    """A RunControl asking to halt at its ``step``-th poll (polled once a step), as an overseer would."""

    halt_decision = 41

    def __init__(self, step: int) -> None:
        self.step, self.polls = step, 0

    def should_halt(self) -> bool:
        self.polls += 1
        return self.polls >= self.step


def _spec(kind: str, model: Path, dp: dict[str, Any] | None) -> Any:
    from trainers.spec import TrainingSpec

    return TrainingSpec.from_dict({"kind": kind, "base_model": str(model), "dataset": "ds_test",
                                   "dataset_version": 1, "learning_rate": 1e-2, "batch_size": 8,
                                   "epochs": 2, "max_steps": STEPS, "save_steps": 4, "seed": 3, "dp": dp})


def _train(spec: Any, pairs: list, out: Path, *, control: Any = None, resume_from: Path | None = None,
           **audit: Any) -> tuple[Any, list[dict[str, Any]]]:
    from trainers.callback import AuditCallback
    from trainers.sinks import MemorySink
    from trainers.training import train

    sink = MemorySink()
    callback = AuditCallback(sink, run="run_resume", spec=spec, **audit)
    result = train(spec, pairs, out, audit=callback, control=control, resume_from=resume_from)
    sink.close()
    return result, sink.events


def _weights(directory: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(directory / "model.safetensors")


def _halted_and_resumed(spec: Any, pairs: list, tmp_path: Path, at: int) -> tuple[Any, list, Any, list]:
    halted, first = _train(spec, pairs, tmp_path / "seg1", control=HaltAt(at))
    assert halted.status == "halted" and halted.steps == at
    start = tmp_path / "resume"  # a directory of its own, as the worker downloads it
    shutil.copytree(halted.output_dir, start)
    done, second = _train(spec, pairs, tmp_path / "seg2", resume_from=start, segment=2,
                          resumed_from={"decision": 41})
    return halted, first, done, second


def _steps(events: list[dict[str, Any]], kind: str) -> list[int]:
    if kind == "run.metrics":
        return [s["step"] for e in events if e["kind"] == kind for s in e["steps"]]
    return [e["step"] for e in events if e["kind"] == kind]


def _one_timeline(first: list, second: list, halted: Any, tiny_model: Path) -> None:
    from trainers.hashing import hash_directory

    both = first + second
    for kind in ("run.checkpoint", "run.privacy"):
        steps = _steps(both, kind)
        assert steps == sorted(set(steps)), (kind, steps)  # strictly increasing: global steps
    metrics = _steps(both, "run.metrics")  # the Trainer adds its summary at a segment's last step
    assert metrics == sorted(metrics) and sorted(set(metrics)) == list(range(1, STEPS + 1))
    started = [e for e in both if e["kind"] == "run.started"]
    assert [s["segment"] for s in started] == [1, 2]
    assert "resumed_from" not in started[0]
    resumed = {"step": halted.steps, "checkpoint_root": halted.root, "decision": 41}
    assert started[1]["resumed_from"] == resumed
    base_files, base_root = hash_directory(tiny_model)
    assert started[1]["base_model"] == started[0]["base_model"] == {"root": base_root, "files": base_files}
    assert second[-1]["kind"] == "run.completed" and second[-1]["steps"] == STEPS


@pytest.mark.parametrize(("kind", "dp"), [
    ("reward_model", {"noise_multiplier": 0.8}),
    ("dpo", {"target_epsilon": 3.0}),
])
def test_a_resumed_dp_run_ends_where_the_unbroken_run_ends(kind, dp, tiny_model, pairs, tmp_path):  # noqa: F811
    import torch

    spec = _spec(kind, tiny_model, dp)
    whole, unbroken = _train(spec, pairs, tmp_path / "whole")
    halted, first, done, second = _halted_and_resumed(spec, pairs, tmp_path, at=3)

    assert whole.status == done.status == "completed" and done.steps == whole.steps == STEPS
    expected, got = _weights(whole.output_dir), _weights(done.output_dir)
    assert expected.keys() == got.keys()
    for name in expected:  # the same Poisson batches, noise and Adam moments: bit for bit
        assert torch.equal(expected[name], got[name]), name
    assert done.epsilon == whole.epsilon and done.epsilon is not None
    privacy = [e["epsilon"] for e in first + second if e["kind"] == "run.privacy"]
    assert privacy == [e["epsilon"] for e in unbroken if e["kind"] == "run.privacy"]
    assert privacy == sorted(privacy) and second[-1]["epsilon"] == privacy[-1] == whole.epsilon
    assert _steps(first + second, "run.checkpoint") == [3, 4, 6]
    _one_timeline(first, second, halted, tiny_model)


def test_a_resumed_trl_run_ends_where_the_unbroken_run_ends(tiny_model, pairs, tmp_path):  # noqa: F811
    import torch

    spec = _spec("reward_model", tiny_model, None)
    whole, _ = _train(spec, pairs, tmp_path / "whole")
    halted, first, done, second = _halted_and_resumed(spec, pairs, tmp_path, at=3)

    assert done.status == "completed" and done.steps == whole.steps == STEPS
    expected, got = _weights(whole.output_dir), _weights(done.output_dir)
    for name in expected:  # optimizer, schedule, RNG and data position continue
        assert torch.allclose(expected[name], got[name], rtol=0, atol=1e-6), name
    _one_timeline(first, second, halted, tiny_model)


def test_a_checkpoint_without_the_dp_state_is_refused(tiny_model, pairs, tmp_path):  # noqa: F811
    spec = _spec("reward_model", tiny_model, {"noise_multiplier": 0.8})
    with pytest.raises(ValueError, match="cannot be resumed exactly"):
        _train(spec, pairs, tmp_path / "out", resume_from=tiny_model)
