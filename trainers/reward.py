"""Reward-model training: TRL's ``RewardTrainer``, and its pairwise loss for the DP loop.

The model is the base model loaded as a sequence classifier with one output (the reward);
TRL's collator stacks a batch of B pairs as 2B rows, ``[chosen_1..B, rejected_1..B]``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_trainer", "pair_losses"]


def build_trainer(spec: Any, dataset: Any, tokenizer: Any, common: dict[str, Any]) -> Any:
    """A ``RewardTrainer`` on ``dataset`` (prompt/chosen/rejected) with the shared arguments."""
    from trl import RewardConfig, RewardTrainer

    args = RewardConfig(max_length=spec.max_length, **common)
    return RewardTrainer(model=spec.base_model, args=args, train_dataset=dataset, processing_class=tokenizer)


def pair_losses(trainer: Any, model: Any, batch: dict[str, Any], pairs: int) -> tuple[Any, dict[str, float]]:
    """Per-pair ``-log sigmoid(r_chosen - r_rejected)`` (TRL's loss before its mean), shape [B].

    The DP loop sums them: pair ``j``'s loss depends on rows ``j`` and ``B + j`` only, so the
    per-row gradients of the sum fold into exact per-pair gradients.
    """
    import torch.nn.functional as F

    rewards = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    use_cache=False).logits.squeeze(-1)
    chosen, rejected = rewards[:pairs], rewards[pairs:]
    losses = -F.logsigmoid(chosen - rejected)
    with_margin = (chosen - rejected).detach()
    metrics = {"accuracy": (with_margin > 0).float().mean().item(), "margin": with_margin.mean().item(),
               "mean_reward": rewards.detach().mean().item()}
    return losses, metrics
