"""``train()``: one audited reward-model or DPO run, with or without DP-SGD.

Without DP the run is TRL's own ``RewardTrainer`` / ``DPOTrainer`` (CPU, fp32, no gradient
checkpointing) with the audit callback added. With DP it is the plain loop of
:mod:`trainers.dp` over the same TRL-prepared data, driving the same callback. Either way:

* ``control.should_halt()`` is polled after every step; when it says so, the run saves a
  checkpoint at once, records ``run.halted`` and returns ``status="halted"``;
* a completed run saves the final model and tokenizer to ``output_dir/final`` and records
  ``run.completed`` with every file's hash and the directory's Merkle root;
* an exception records ``run.failed`` (class and message) and is raised again.

``resume_from`` (a halted checkpoint's directory, under any name) makes the call a true resume of
the same spec: TRL's Trainer resumes from its own checkpoint (optimizer, scheduler, RNG, data
position, ``global_step``), the DP loop from the state it saves with each checkpoint (see
:mod:`trainers.dp`). Steps on the events are the run's global steps; ``run.started`` says which
segment this is and what it resumes from, and names the original base model.

Heavy imports (torch, transformers, TRL, Opacus) happen inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .spec import TrainingSpec

if TYPE_CHECKING:
    from .callback import AuditCallback

__all__ = ["PreferencePair", "RunControl", "TrainingResult", "common_arguments", "prepare",
           "prepared_rows", "train"]


@dataclass(frozen=True)
class PreferencePair:
    prompt: str
    chosen: str
    rejected: str


class RunControl(Protocol):
    """Polled after every step; ``halt_decision`` (optional) is the halt decision's leaf index."""

    def should_halt(self) -> bool: ...


@dataclass
class TrainingResult:
    status: Literal["completed", "halted"]
    steps: int
    epsilon: float | None
    output_dir: Path
    final_files: dict[str, str] = field(default_factory=dict)
    root: str = ""


def use_cpu() -> bool:
    """Train on the CPU unless a CUDA device is visible; ``RLHF_AUDIT_TRAIN_DEVICE=cpu`` forces it.

    fp32 either way: DP-SGD's clipping and noise are calibrated without mixed precision.
    """
    import os

    if os.environ.get("RLHF_AUDIT_TRAIN_DEVICE", "auto").lower() == "cpu":
        return True
    import torch

    return not torch.cuda.is_available()


def common_arguments(spec: TrainingSpec, output_dir: Path) -> dict[str, Any]:
    """TrainingArguments shared by both kinds: fp32, no checkpointing, no reporting."""
    return {
        "output_dir": str(output_dir), "per_device_train_batch_size": spec.batch_size,
        "num_train_epochs": spec.epochs, "max_steps": spec.max_steps or -1,
        "learning_rate": spec.learning_rate, "seed": spec.seed, "data_seed": spec.seed,
        "logging_steps": spec.logging_steps, "logging_strategy": "steps",
        "save_strategy": "steps", "save_steps": spec.save_steps or 10**9,
        "activation_checkpointing": False, "bf16": False, "fp16": False, "use_cpu": use_cpu(),
        "report_to": [], "disable_tqdm": True, "dataloader_num_workers": 0,
    }


def prepare(spec: TrainingSpec, pairs: Sequence[PreferencePair], output_dir: Path) -> Any:
    """The TRL trainer for ``spec`` over ``pairs`` (tokenized by TRL), not yet trained."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from . import dpo, reward

    hf_logging.set_verbosity_error()
    if not pairs:
        raise ValueError("the dataset has no preference pairs to train on")
    tokenizer = AutoTokenizer.from_pretrained(spec.base_model)
    dataset = Dataset.from_list([{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
                                 for p in pairs])
    builder = reward.build_trainer if spec.kind == "reward_model" else dpo.build_trainer
    return builder(spec, dataset, tokenizer, common_arguments(spec, output_dir))


def prepared_rows(trainer: Any, kind: str) -> list[dict[str, Any]]:
    """The token-id columns of a prepared trainer's dataset, which its collator takes."""
    columns = ["chosen_ids", "rejected_ids"] if kind == "reward_model" else ["prompt_ids", "chosen_ids",
                                                                             "rejected_ids"]
    return [{c: ex[c] for c in columns} for ex in trainer.train_dataset]


def train(spec: TrainingSpec, pairs: Sequence[PreferencePair], output_dir: Path, *,
          audit: AuditCallback, control: RunControl | None = None,
          resume_from: Path | None = None) -> TrainingResult:
    """Run ``spec`` on ``pairs``, audited by ``audit``; see the module docstring."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    audit.auto_complete = False
    if audit.spec is None:
        audit.spec = spec
    try:
        if resume_from is not None:
            resume_from = Path(resume_from)
            _resuming(audit, resume_from, spec.dp is not None)
        if spec.dp is not None:
            from .dp import train_dp

            status, steps, checkpoint = train_dp(spec, pairs, output_dir, audit, control, resume_from)
        else:
            status, steps, checkpoint = _train_trl(spec, pairs, output_dir, audit, control, resume_from)
        result = _finish(audit, status, steps, checkpoint, output_dir, control)
        audit.sink.flush()
        return result
    except BaseException as e:
        if audit.ended is None:
            try:
                audit.record_failed(e)
                audit.sink.flush()
            except Exception as sink_error:
                e.add_note(f"run.failed could not be recorded: {sink_error}")
        raise


RESUME_FILES = {"dp": ("dp_state.json", "optimizer.pt", "rng_state.pth"),
                "trl": ("trainer_state.json", "optimizer.pt", "scheduler.pt", "rng_state.pth")}


def _resuming(audit: AuditCallback, checkpoint: Path, dp: bool) -> None:
    """Check ``checkpoint`` holds a resumable state; tell ``audit`` the segment resumes from it."""
    import json

    from .hashing import hash_directory

    missing = [f for f in RESUME_FILES["dp" if dp else "trl"] if not (checkpoint / f).is_file()]
    if missing:
        raise ValueError(f"checkpoint {checkpoint} cannot be resumed exactly: it has no {', '.join(missing)} "
                         f"(a {'DP' if dp else 'TRL'} run's halted checkpoint holds them)")
    state = json.loads((checkpoint / ("dp_state.json" if dp else "trainer_state.json")).read_text())
    step = int(state["step"] if dp else state["global_step"])
    _, root = hash_directory(checkpoint)
    given = {k: v for k, v in (audit.resumed_from or {}).items() if v is not None}  # e.g. the decisions
    audit.resumed_from = {**given, "step": step, "checkpoint_root": root}
    audit.segment = max(audit.segment, 2)  # a resume is at least the run's second segment
    audit.step = step
    if dp:
        audit.epsilon = state.get("epsilon")


def _finish(audit: AuditCallback, status: str, steps: int, checkpoint: Any, output_dir: Path,
            control: RunControl | None) -> TrainingResult:
    from .hashing import hash_directory

    if status == "halted":
        assert audit.last_checkpoint is not None
        path, files, root = audit.last_checkpoint
        decision = getattr(control, "halt_decision", None)
        audit.record_halted(step=steps, checkpoint_root=root, decision=decision)
        return TrainingResult("halted", steps, audit.epsilon, path, files, root)
    final = output_dir / "final"
    checkpoint(final)
    files, root = hash_directory(final)
    audit.record_completed(steps=steps, files=files, root=root)
    return TrainingResult("completed", steps, audit.epsilon, final, files, root)


def _train_trl(spec: TrainingSpec, pairs: Sequence[PreferencePair], output_dir: Path,
               audit: AuditCallback, control: RunControl | None,
               resume_from: Path | None = None) -> tuple[str, int, Any]:
    from transformers import PrinterCallback, TrainerCallback

    class Halt(TrainerCallback):
        halted = False

        def on_step_end(self, args: Any, state: Any, ctl: Any, **kwargs: Any) -> None:
            if control is not None and control.should_halt():
                self.halted = True
                ctl.should_save = True
                ctl.should_training_stop = True

    trainer = prepare(spec, pairs, output_dir)
    halt = Halt()
    trainer.remove_callback(PrinterCallback)  # logs go to the log, not stdout
    trainer.add_callback(audit)
    trainer.add_callback(halt)
    # From the original spec: the Trainer loads the checkpoint's weights over the base model (DPO's
    # reference model stays the base), then its optimizer, scheduler, RNG and trainer_state.json.
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from is not None else None)
    return ("halted" if halt.halted else "completed"), trainer.state.global_step, trainer.save_model
