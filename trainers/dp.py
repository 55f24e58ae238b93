"""DP-SGD with Opacus at the level of one preference pair: a plain loop over TRL-prepared data.

Why a loop of our own rather than Opacus inside TRL's ``Trainer``: the Trainer calls
``model.zero_grad()`` instead of the DP optimizer's (breaking Poisson sampling), logs the raw
gradient's norm (a leak), and gradient checkpointing silently starves layers of per-sample
gradients. This loop is short, and depends on TRL only for data preparation and collation.

**Per-pair folding.** TRL's collators stack B pairs as 2B rows ``[chosen_1..B, rejected_1..B]``
and Opacus' hooks compute one gradient per *row*. The loss is the *sum* over pairs
(``loss_reduction="sum"``), so pair ``j``'s loss depends on rows ``j`` and ``B+j`` only and its
exact gradient is ``g[j] + g[B+j]``. After ``backward`` and before the optimizer clips,
:func:`fold_pairs` replaces every parameter's ``grad_sample`` [2B, ...] by the folded
[B, ...]: the DP optimizer then clips, sums and noises per *pair*, which is the unit of the
guarantee. (Making a pair one "sample" by reshaping inputs would not work: Opacus takes the
batch dimension from the activations each layer sees, which are rows.)

Other measured pitfalls handled here: ``wrap_model=False`` (the model stays a
``PreTrainedModel``); Poisson sampling with empty batches run as noise-only steps; the PRV
accountant asked once per logged step (ε = 0 before the first step); no gradient norm in the
logged metrics; DPO's ``lm_head`` frozen. With AdamW (scale-invariant) the summed, noised
gradient needs no division by the batch size.

**Resume.** Each checkpoint holds what an exact resume needs: the weights, the inner AdamW's
state (``optimizer.pt``), torch's global RNG states (``rng_state.pth``: Opacus draws both the
Poisson batches and the noise from the default generators, CPU and, for noise on a GPU, CUDA),
and in ``dp_state.json`` the global step and the accountant's history. A resume prepares the run
from the original spec (DPO's reference model stays the base model), loads the weights, makes it
private with the same σ (calibrated for the same planned steps), restores the rest and goes on
to the planned end: the weights, ε and step numbers are those of the run without the halt, and
ε stays cumulative over the segments.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .spec import TrainingSpec, dp_schedule

if TYPE_CHECKING:
    from .callback import AuditCallback
    from .training import PreferencePair, RunControl

__all__ = ["accountant_parameters", "fold_pairs", "train_dp"]


def accountant_parameters(accountant: Any, delta: float) -> dict[str, Any]:
    """The parameters every ε of the run is asked with, explicit rather than Opacus' defaults, so
    they go on ``run.started`` and a third party recomputes ε with Opacus from (σ, q, steps, δ,
    accountant, these): PRV's ``eps_error`` and ``delta_error``, RDP's orders (``alphas``)."""
    import inspect

    mechanism = accountant.mechanism()
    if mechanism == "prv":
        default = inspect.signature(accountant.get_epsilon).parameters["eps_error"].default
        return {"eps_error": float(default), "delta_error": delta / 1000}  # Opacus' own defaults
    if mechanism == "rdp":
        return {"alphas": [float(a) for a in accountant.DEFAULT_ALPHAS]}
    raise ValueError(f"no recorded parameters for the {mechanism!r} accountant")


def fold_pairs(params: Sequence[Any], pairs: int) -> None:
    """Turn per-row ``grad_sample`` [2B, ...] into per-pair [B, ...]: ``g[:B] + g[B:]``."""
    for p in params:
        gs = p.grad_sample
        if gs is None:
            raise RuntimeError("a trainable parameter got no per-sample gradient; is gradient "
                               "checkpointing on, or does a layer bypass its module?")
        if isinstance(gs, list):
            raise RuntimeError("per-sample gradients were accumulated over several backward passes")
        if gs.shape[0] != 2 * pairs:
            raise RuntimeError(f"expected {2 * pairs} per-row gradients, got {gs.shape[0]}")
        p.grad_sample = gs[:pairs] + gs[pairs:]


def _noise_only(params: Sequence[Any]) -> None:
    """An empty Poisson batch: no per-sample gradients, so the step adds noise only."""
    import torch

    for p in params:
        p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)


def _privatize(spec: TrainingSpec, model: Any, optimizer: Any, n: int, sample_rate: float,
               steps: int) -> tuple[Any, Any, Any, Any, float]:
    """Opacus on the model (hooks only, ``wrap_model=False``): engine, hooks, optimizer, loader, σ."""
    import torch
    from opacus import PrivacyEngine
    from opacus.accountants.utils import get_noise_multiplier
    from torch.utils.data import DataLoader, TensorDataset

    assert spec.dp is not None
    sigma = spec.dp.noise_multiplier
    if sigma is None:  # calibrated so that ε reaches the target exactly at the last planned step
        assert spec.dp.target_epsilon is not None
        sigma = get_noise_multiplier(target_epsilon=spec.dp.target_epsilon, target_delta=spec.dp.delta,
                                     sample_rate=sample_rate, steps=steps, accountant=spec.dp.accountant)
    engine = PrivacyEngine(accountant=spec.dp.accountant)
    loader = DataLoader(TensorDataset(torch.arange(n)), batch_size=spec.batch_size)
    hooks, dp_optimizer, dp_loader = engine.make_private(
        module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=sigma,
        max_grad_norm=spec.dp.max_grad_norm, poisson_sampling=True, wrap_model=False,
        loss_reduction="sum", grad_sample_mode="hooks")
    if not math.isclose(1 / len(dp_loader), sample_rate):
        raise RuntimeError(f"Opacus' sample rate {1 / len(dp_loader)} differs from the planned {sample_rate}")
    return engine, hooks, dp_optimizer, dp_loader, float(sigma)


def _load_weights(model: Any, checkpoint: Path) -> None:
    """The checkpoint's weights into ``model`` (every tensor, strictly)."""
    from transformers.trainer_utils import load_sharded_checkpoint

    single = checkpoint / "model.safetensors"
    if single.is_file():
        from safetensors.torch import load_file

        model.load_state_dict(load_file(single, device=str(next(model.parameters()).device)), strict=True)
    else:
        load_sharded_checkpoint(model, str(checkpoint), strict=True)


def _rng_states() -> dict[str, Any]:
    import torch

    states: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _save(path: Path, model: Any, tokenizer: Any, optimizer: Any, engine: Any, step: int,
          plan: dict[str, Any], delta: float, resumable: bool) -> None:
    """The model and ``dp_state.json``; for a checkpoint (``resumable``) also what a resume restores."""
    import torch

    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    epsilon = engine.accountant.get_epsilon(delta, **plan["accountant_parameters"]) if step else 0.0
    history = [list(h) for h in engine.accountant.history]
    (Path(path) / "dp_state.json").write_text(json.dumps(
        {"step": step, "epsilon": epsilon, "accountant_history": history, **plan}, indent=1, sort_keys=True))
    if resumable:
        torch.save(optimizer.state_dict(), Path(path) / "optimizer.pt")
        torch.save(_rng_states(), Path(path) / "rng_state.pth")


def _restore(checkpoint: Path, model: Any, plan: dict[str, Any], optimizer: Any, engine: Any) -> int:
    """Restore the weights, optimizer, RNG and accountant from ``checkpoint``; its global step.

    Refuses a checkpoint planned otherwise (another σ, sample rate or number of steps, e.g. the
    data changed since): that would not be the same run."""
    import torch

    saved = json.loads((checkpoint / "dp_state.json").read_text())
    for key in ("noise_multiplier", "sample_rate", "planned_steps", "pairs"):
        if saved.get(key) != plan[key]:
            raise ValueError(f"checkpoint {checkpoint} cannot be resumed exactly: its {key} is "
                             f"{saved.get(key)!r}, this run's is {plan[key]!r}")
    _load_weights(model, checkpoint)
    optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", map_location="cpu", weights_only=True))
    rng = torch.load(checkpoint / "rng_state.pth", weights_only=True)
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    engine.accountant.history = [(float(s), float(q), int(n)) for s, q, n in saved["accountant_history"]]
    return int(saved["step"])


def train_dp(spec: TrainingSpec, pairs: Sequence[PreferencePair], output_dir: Path, audit: AuditCallback,
             control: RunControl | None, resume_from: Path | None = None) -> tuple[str, int, Any]:
    """The DP loop; returns (status, steps, save function) for :func:`trainers.training.train`."""
    import torch
    from transformers import TrainerControl, TrainerState

    from . import dpo, reward
    from .training import prepare, prepared_rows

    assert spec.dp is not None
    torch.manual_seed(spec.seed)
    trainer = prepare(spec, pairs, output_dir)
    kind = reward if spec.kind == "reward_model" else dpo
    model, tokenizer, collate = trainer.model, trainer.processing_class, trainer.data_collator
    rows = prepared_rows(trainer, spec.kind)
    if spec.kind == "dpo":
        dpo.freeze_lm_head(model)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=spec.learning_rate, weight_decay=0.0)
    sample_rate, steps_total = dp_schedule(len(rows), spec.batch_size, spec.epochs, spec.max_steps)
    engine, hooks, dp_optimizer, dp_loader, sigma = _privatize(spec, model, optimizer, len(rows),
                                                               sample_rate, steps_total)

    plan: dict[str, Any] = {
        "enabled": True, "noise_multiplier": sigma, "max_grad_norm": spec.dp.max_grad_norm,
        "target_epsilon": spec.dp.target_epsilon, "delta": spec.dp.delta, "sample_rate": sample_rate,
        "accountant": spec.dp.accountant,
        "accountant_parameters": accountant_parameters(engine.accountant, spec.dp.delta),
        "pairs": len(rows), "planned_steps": steps_total}
    audit.dp, delta = plan, spec.dp.delta
    args, state, ctl = trainer.args, TrainerState(), TrainerControl()
    state.max_steps, state.num_train_epochs = steps_total, spec.epochs
    batches_per_epoch = len(dp_loader)
    if resume_from is not None:  # the weights into the hooked model: Opacus' hooks stay on its modules
        state.global_step = _restore(resume_from, model, plan, optimizer, engine)
        state.epoch = state.global_step / batches_per_epoch
    audit.on_train_begin(args, state, ctl, model=model)

    def save(path: Path, resumable: bool = False) -> None:
        _save(path, model, tokenizer, optimizer, engine, state.global_step, plan, delta, resumable)

    def checkpoint() -> None:
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        save(path, resumable=True)
        audit.on_save(args, state, ctl)

    status = "completed"
    try:
        while state.global_step < steps_total:
            for indices in dp_loader.batch_sampler:
                dp_optimizer.zero_grad(set_to_none=True)
                metrics: dict[str, float] = {}
                if indices:
                    batch = collate([rows[i] for i in indices])
                    losses, metrics = kind.pair_losses(trainer, model, batch, len(indices))
                    loss = losses.sum()
                    with warnings.catch_warnings():  # the embedding's hook: its input needs no grad
                        warnings.filterwarnings("ignore", message="Full backward hook is firing")
                        loss.backward()
                    fold_pairs(params, len(indices))
                    metrics["loss"] = loss.item() / len(indices)
                else:
                    _noise_only(params)
                dp_optimizer.step()
                state.global_step += 1
                state.epoch = state.global_step / batches_per_epoch
                audit.on_step_end(args, state, ctl)
                last = state.global_step >= steps_total
                if state.global_step % spec.logging_steps == 0 or last:
                    logs = {**metrics, "pairs": len(indices),
                            "epsilon": engine.accountant.get_epsilon(delta, **plan["accountant_parameters"])}
                    audit.on_log(args, state, ctl, logs=logs)
                if control is not None and control.should_halt():
                    status = "halted"
                    checkpoint()
                    return status, state.global_step, save
                if last or (spec.save_steps and state.global_step % spec.save_steps == 0):
                    checkpoint()
                if last:
                    break
        audit.on_train_end(args, state, ctl)
    finally:
        dp_optimizer.zero_grad(set_to_none=True)
        hooks.remove_hooks()
    return status, state.global_step, save
