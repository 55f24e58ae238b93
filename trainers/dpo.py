"""DPO: TRL's ``DPOTrainer``, and its sigmoid loss for the DP loop.

TRL computes log-probabilities with a fused LM head that reads ``lm_head.weight`` directly,
so Opacus' hooks never see a per-sample gradient for it: under DP ``lm_head`` is frozen (the
model must have untied embeddings, or freezing it would freeze the input embedding too).
The reference model is TRL's own copy of the base model (``ref_model=None``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_trainer", "freeze_lm_head", "pair_losses"]


def build_trainer(spec: Any, dataset: Any, tokenizer: Any, common: dict[str, Any]) -> Any:
    """A ``DPOTrainer`` on ``dataset`` (prompt/chosen/rejected) with the shared arguments."""
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(max_length=spec.max_length, beta=spec.beta, **common)
    return DPOTrainer(model=spec.base_model, ref_model=None, args=args, train_dataset=dataset,
                      processing_class=tokenizer)


def freeze_lm_head(model: Any) -> None:
    """Freeze ``lm_head`` for DP; refuse a model whose output and input embeddings are tied."""
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError("DP-DPO needs a causal LM with an output embedding (lm_head)")
    if head.weight is model.get_input_embeddings().weight:
        raise ValueError("DP-DPO freezes lm_head, so the base model needs untied embeddings "
                         "(tie_word_embeddings=False)")
    head.weight.requires_grad_(False)
    if getattr(head, "bias", None) is not None:
        head.bias.requires_grad_(False)


def _logps(model: Any, batch: dict[str, Any]) -> Any:
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels,
                fused_lm_head=True, use_cache=False)
    seq_len = batch["completion_mask"].size(1) - 1
    return out.log_probs[:, -seq_len:].sum(dim=1)


def pair_losses(trainer: Any, model: Any, batch: dict[str, Any], pairs: int) -> tuple[Any, dict[str, float]]:
    """Per-pair ``-log sigmoid(beta * (chosen log-ratio - rejected log-ratio))``, shape [B]."""
    import torch
    import torch.nn.functional as F

    logps = _logps(model, batch)
    with torch.no_grad():
        ref = _logps(trainer.ref_model, batch)
    chosen, rejected = logps[:pairs] - ref[:pairs], logps[pairs:] - ref[pairs:]
    beta = trainer.beta
    losses = -F.logsigmoid(beta * (chosen - rejected))
    with torch.no_grad():
        rc, rr = beta * chosen.detach(), beta * rejected.detach()
        metrics = {"rewards/chosen": rc.mean().item(), "rewards/rejected": rr.mean().item(),
                   "rewards/accuracies": (rc > rr).float().mean().item(),
                   "rewards/margins": (rc - rr).mean().item()}
    return losses, metrics
