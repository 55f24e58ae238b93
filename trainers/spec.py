"""Training job specs as plain data: what a job trains, on what, and under which privacy terms.

The server imports this module (to validate a submitted spec and check the privacy budget
before a job starts), so it imports no ML library at module level; only
:meth:`TrainingSpec.planned_epsilon` with a noise multiplier imports Opacus' accountant, lazily.
A spec that does not validate raises :class:`JobSpecError` with a message naming the field; a
``base_model`` path that exists here must be a model directory (with its ``config.json``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from ledger.errors import EntryError

__all__ = ["ACCOUNTANTS", "JOB_KINDS", "MAX_BASE_MODEL", "DPSettings", "JobSpecError", "TrainingSpec",
           "dp_schedule", "epsilon_after"]

JOB_KINDS = ("reward_model", "dpo")
ACCOUNTANTS = ("prv", "rdp")
MAX_BASE_MODEL = 4096  # PATH_MAX on Linux; a hub id is far shorter


class JobSpecError(EntryError):
    """A training job spec is malformed or inconsistent."""


def _number(d: dict[str, Any], key: str, kind: type, *, minimum: float | None = None,
            above: float | None = None, below: float | None = None, optional: bool = False) -> Any:
    value = d.get(key)
    if value is None:
        if optional:
            return None
        raise JobSpecError(f"{key} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise JobSpecError(f"{key} must be {'a number' if kind is float else 'an integer'}, not {value!r}")
    if kind is float and not math.isfinite(value):
        raise JobSpecError(f"{key} must be finite, not {value!r}")
    if minimum is not None and value < minimum:
        raise JobSpecError(f"{key} must be at least {minimum}, not {value!r}")
    if above is not None and value <= above:
        raise JobSpecError(f"{key} must be greater than {above}, not {value!r}")
    if below is not None and value >= below:
        raise JobSpecError(f"{key} must be less than {below}, not {value!r}")
    return kind(value)


def _string(d: dict[str, Any], key: str, *, optional: bool = False) -> Any:
    value = d.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise JobSpecError(f"{key} must be a non-empty string, not {value!r}")
    return value


def _base_model(name: str) -> str:
    """``base_model`` as ``from_pretrained`` takes it: a hub id, or a local model directory. A path
    that exists here must be a directory holding the model's ``config.json`` (``from_pretrained``
    reads it before anything else); anything else fails now, not when the job starts."""
    if len(name) > MAX_BASE_MODEL:
        raise JobSpecError(f"base_model is {len(name):,} characters long; a model directory or id may have "
                           f"at most {MAX_BASE_MODEL:,}")
    path = Path(name).expanduser()
    try:
        exists, is_dir = path.exists(), path.is_dir()
        has_config = is_dir and (path / "config.json").is_file()
    except OSError:  # a name the OS refuses to look up (too long...): not a local path
        return name
    if exists and not is_dir:
        raise JobSpecError(f"base_model {name!r} is a file: name a model directory (one holding "
                           "config.json) or a model id")
    if is_dir and not has_config:
        raise JobSpecError(f"base_model {name!r} is a directory without a model's config.json: name "
                           "the directory a model was saved to (save_pretrained) or a model id")
    return name


def _label(d: dict[str, Any], key: str) -> str | None:
    """An optional short name (a model id, a revision): no spaces, as a hub or git names things."""
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 256 or any(c.isspace() for c in value):
        raise JobSpecError(f"{key} must be a non-empty name without spaces (at most 256 characters), "
                           f"not {value!r}")
    return value


def _flag(d: dict[str, Any], key: str) -> bool | None:
    """An optional JSON boolean: ``1`` or ``"yes"`` is refused rather than read as true."""
    value = d.get(key)
    if value is not None and type(value) is not bool:
        raise JobSpecError(f"{key} must be true or false, not {value!r}")
    return value


def _unknown(d: dict[str, Any], cls: type, where: str) -> None:
    known = {f.name for f in fields(cls)}
    extra = sorted(set(d) - known)
    if extra:
        raise JobSpecError(f"unknown {where} field(s): {', '.join(extra)} "
                           f"(known: {', '.join(sorted(known))})")


def dp_schedule(n_pairs: int, batch_size: int, epochs: int, max_steps: int | None) -> tuple[float, int]:
    """(sample rate, number of steps) of a Poisson-sampled run, as Opacus derives them.

    Opacus takes the sample rate as ``1 / len(data_loader)``; a step is one Poisson batch, and
    ``max_steps`` (when set) caps the run.
    """
    if n_pairs < 1:
        raise JobSpecError("the dataset has no preference pairs")
    batches = math.ceil(n_pairs / batch_size)
    steps = epochs * batches
    if max_steps is not None:
        steps = min(steps, max_steps)
    return 1.0 / batches, steps


@dataclass(frozen=True)
class DPSettings:
    """DP-SGD at the level of one preference pair: a target ε, or a noise multiplier."""

    target_epsilon: float | None = None
    noise_multiplier: float | None = None
    delta: float = 1e-5
    max_grad_norm: float = 1.0
    accountant: str = "prv"

    @classmethod
    def from_dict(cls, d: Any) -> DPSettings:
        if not isinstance(d, dict):
            raise JobSpecError(f"dp must be an object, not {d!r}")
        _unknown(d, cls, "dp")
        target = _number(d, "target_epsilon", float, above=0, optional=True)
        sigma = _number(d, "noise_multiplier", float, above=0, optional=True)
        if (target is None) == (sigma is None):
            raise JobSpecError("dp needs exactly one of target_epsilon and noise_multiplier")
        accountant = d.get("accountant", "prv")
        if accountant not in ACCOUNTANTS:
            raise JobSpecError(f"dp.accountant must be one of {', '.join(ACCOUNTANTS)}, not {accountant!r}")
        return cls(
            target_epsilon=target, noise_multiplier=sigma,
            delta=_number({"delta": d.get("delta", 1e-5)}, "delta", float, above=0, below=1),
            max_grad_norm=_number({"max_grad_norm": d.get("max_grad_norm", 1.0)}, "max_grad_norm",
                                  float, above=0),
            accountant=accountant)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class TrainingSpec:
    """One training job. ``base_model`` is a local directory (or whatever ``from_pretrained`` takes);
    ``base_model_id`` and ``base_model_revision`` state where that directory came from upstream
    (recorded as stated on ``run.started``; training loads ``base_model`` either way);
    ``base_model_general_purpose`` declares it a general-purpose AI model, which brings the run's
    releases under AI Act Art. 53 (``ai-act.art53.gpai``)."""

    kind: Literal["reward_model", "dpo"]
    base_model: str
    dataset: str
    learning_rate: float
    dataset_version: int | None = None
    epochs: int = 1
    batch_size: int = 8
    max_length: int = 128
    seed: int = 0
    dp: DPSettings | None = None
    logging_steps: int = 1
    save_steps: int | None = None
    max_steps: int | None = None
    beta: float = 0.1
    base_model_id: str | None = None
    base_model_revision: str | None = None
    base_model_general_purpose: bool | None = None  # the operator's declaration: AI Act Art. 53 applies

    @classmethod
    def from_dict(cls, d: Any) -> TrainingSpec:
        """Validate a submitted spec (JSON object); :class:`JobSpecError` names the bad field."""
        if not isinstance(d, dict):
            raise JobSpecError(f"a job spec must be a JSON object, not {type(d).__name__}")
        _unknown(d, cls, "spec")
        kind = d.get("kind")
        if kind not in JOB_KINDS:
            raise JobSpecError(f"kind must be one of {', '.join(JOB_KINDS)}, not {kind!r}")
        dp = d.get("dp")
        if d.get("base_model_revision") is not None and d.get("base_model_id") is None:
            raise JobSpecError("base_model_revision needs base_model_id: a revision of which model?")
        return cls(
            kind=kind,
            base_model=_base_model(_string(d, "base_model")),
            dataset=_string(d, "dataset"),
            dataset_version=_number(d, "dataset_version", int, minimum=1, optional=True),
            learning_rate=_number(d, "learning_rate", float, above=0, below=1),
            epochs=_number({"epochs": d.get("epochs", 1)}, "epochs", int, minimum=1),
            batch_size=_number({"batch_size": d.get("batch_size", 8)}, "batch_size", int, minimum=1),
            max_length=_number({"max_length": d.get("max_length", 128)}, "max_length", int, minimum=8),
            seed=_number({"seed": d.get("seed", 0)}, "seed", int, minimum=0),
            dp=None if dp is None else DPSettings.from_dict(dp),
            logging_steps=_number({"logging_steps": d.get("logging_steps", 1)}, "logging_steps", int,
                                  minimum=1),
            save_steps=_number(d, "save_steps", int, minimum=1, optional=True),
            max_steps=_number(d, "max_steps", int, minimum=1, optional=True),
            beta=_number({"beta": d.get("beta", 0.1)}, "beta", float, above=0),
            base_model_id=_label(d, "base_model_id"),
            base_model_revision=_label(d, "base_model_revision"),
            base_model_general_purpose=_flag(d, "base_model_general_purpose"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready data, ``None`` fields left out (as on the log)."""
        out = {k: v for k, v in asdict(self).items() if v is not None and k != "dp"}
        if self.dp is not None:
            out["dp"] = self.dp.to_dict()
        return out

    def planned_epsilon(self, n_pairs: int) -> float | None:
        """ε the run will have spent at its end (``None`` without DP), for the budget check.

        With a target ε that is the target (the noise is calibrated to reach it exactly at the
        last step); with a noise multiplier, the accountant's ε after the planned steps.
        """
        if self.dp is None:
            return None
        if self.dp.target_epsilon is not None:
            return self.dp.target_epsilon
        sample_rate, steps = dp_schedule(n_pairs, self.batch_size, self.epochs, self.max_steps)
        assert self.dp.noise_multiplier is not None
        return epsilon_after(self.dp.noise_multiplier, sample_rate, steps, self.dp.delta, self.dp.accountant)


def epsilon_after(noise_multiplier: float, sample_rate: float, steps: int, delta: float,
                  accountant: str = "prv") -> float:
    """ε of ``steps`` Poisson-sampled Gaussian steps, by Opacus' accountant (imported lazily)."""
    if steps == 0:
        return 0.0
    from opacus.accountants import create_accountant

    acc = create_accountant(accountant)
    acc.history = [(noise_multiplier, sample_rate, steps)]
    return float(acc.get_epsilon(delta=delta))
