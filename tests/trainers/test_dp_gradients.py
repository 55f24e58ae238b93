"""Per-pair gradient folding: Opacus' per-row gradients, folded, equal exact per-pair gradients."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")


def _prepared(kind: str, model_dir, pairs, tmp_path):  # noqa: F811
    from trainers import dpo, reward
    from trainers.spec import TrainingSpec
    from trainers.training import prepare, prepared_rows

    spec = TrainingSpec(kind=kind, base_model=str(model_dir), dataset="ds_t", learning_rate=1e-3)
    trainer = prepare(spec, pairs[:5], tmp_path)
    module = reward if kind == "reward_model" else dpo
    if kind == "dpo":
        dpo.freeze_lm_head(trainer.model)
    rows = prepared_rows(trainer, kind)
    return trainer, module, trainer.data_collator(rows), len(rows)


@pytest.mark.parametrize("kind", ["reward_model", "dpo"])
def test_folded_per_pair_gradients_are_exact(kind, tiny_model, pairs, tmp_path):  # noqa: F811
    from opacus.grad_sample import GradSampleHooks

    from trainers.dp import fold_pairs

    trainer, module, batch, n = _prepared(kind, tiny_model, pairs, tmp_path)
    model = trainer.model.train()
    reference = copy.deepcopy(model)  # the same weights, without hooks, for exact autograd
    params = [p for p in model.parameters() if p.requires_grad]
    ref_params = [p for p in reference.parameters() if p.requires_grad]

    hooks = GradSampleHooks(model, loss_reduction="sum")
    losses, _ = module.pair_losses(trainer, model, batch, n)
    losses.sum().backward()
    rows = [p.grad_sample.clone() for p in params]
    fold_pairs(params, n)
    hooks.remove_hooks()

    ref_losses, _ = module.pair_losses(trainer, reference, batch, n)
    assert torch.allclose(losses, ref_losses)
    worst = 0.0
    for j in range(n):
        exact = torch.autograd.grad(ref_losses[j], ref_params, retain_graph=True)
        folded = torch.cat([p.grad_sample[j].flatten() for p in params])
        exact_flat = torch.cat([g.flatten() for g in exact])
        worst = max(worst, ((folded - exact_flat).norm() / exact_flat.norm()).item())
        # a chosen row alone is not the pair's gradient: the fold matters
        chosen_only = torch.cat([r[j].flatten() for r in rows])
        assert (chosen_only - exact_flat).norm() / exact_flat.norm() > 1e-2
    assert worst < 1e-5, worst
    assert len(params) > 5 and all(p.grad_sample.shape[0] == n for p in params)


def test_fold_refuses_missing_or_wrong_shaped_grad_samples():
    from trainers.dp import fold_pairs

    p = torch.nn.Parameter(torch.zeros(3))
    p.grad_sample = None
    with pytest.raises(RuntimeError, match="no per-sample gradient"):
        fold_pairs([p], 2)
    p.grad_sample = torch.zeros(3, 3)
    with pytest.raises(RuntimeError, match="expected 4 per-row"):
        fold_pairs([p], 2)
    p.grad_sample = torch.arange(12.0).reshape(4, 3)
    fold_pairs([p], 2)
    assert p.grad_sample.tolist() == [[6.0, 8.0, 10.0], [12.0, 14.0, 16.0]]


def test_dpo_under_dp_refuses_tied_embeddings():
    from transformers import LlamaConfig, LlamaForCausalLM

    from trainers.dpo import freeze_lm_head

    model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2,
                                         tie_word_embeddings=True))
    with pytest.raises(ValueError, match="untied embeddings"):
        freeze_lm_head(model)
