"""Tiny local models and a synthetic preference dataset, for the demo, tests and benchmarks.

Nothing can come from the Hugging Face Hub here, so a byte-level BPE tokenizer is trained on
generated sentences and a randomly initialised Llama is saved next to it with
``save_pretrained``. The directory loads as a causal LM (DPO) and, with ``num_labels=1``, as
a sequence classifier (the reward model). Real users point the same code at their own model.

Embeddings are untied (``tie_word_embeddings=False``): DP-DPO freezes ``lm_head`` (TRL reads
its weight directly, so Opacus sees no per-sample gradient for it), which must not freeze the
input embedding too.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

__all__ = ["SIZES", "build_tiny_model", "synthetic_pairs"]

SIZES: dict[str, dict[str, int]] = {
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 4},
    "small": {"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4,
              "num_attention_heads": 4, "num_key_value_heads": 4},
}
VOCAB_SIZE = 512
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<s>{{ message['role'] }}: {{ message['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant: {% endif %}"
)

_TOPICS = ["the garden", "a budget", "the report", "a recipe", "the bicycle", "a poem", "the meeting",
           "a password", "the river", "an invoice", "the telescope", "a letter"]
_VERBS = ["plan", "fix", "write", "check", "explain", "improve", "summarise", "organise"]
_GOOD = ["Start with a short list, then {v} {t} step by step and check each step.",
         "A clear way to {v} {t} is to set one goal, gather what you need, and review it.",
         "To {v} {t}, break it into small parts and ask for feedback early."]
_BAD = ["No idea, {t} is boring.", "Just guess and hope {t} works out.",
        "I will not help with {t}.", "Do whatever, {t} does not matter."]


def _sentences(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        t, v = rng.choice(_TOPICS), rng.choice(_VERBS)
        out.append(f"How can I {v} {t}?")
        out.append(rng.choice(_GOOD).format(v=v, t=t))
        out.append(rng.choice(_BAD).format(t=t))
    return out


def _tokenizer(seed: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_sentences(random.Random(seed), 400), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", unk_token="<unk>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(path: str | Path, size: str = "tiny", *, seed: int = 0) -> Path:
    """Write a tokenizer and a random Llama (``tiny`` ~150k or ``small`` ~3.4M parameters) to ``path``."""
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {sorted(SIZES)}")
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), max_position_embeddings=256, tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, **SIZES[size])
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def synthetic_pairs(n: int, *, annotators: int = 3, seed: int = 0, overlap: float = 0.25,
                    guideline_version: str = "g-1.0") -> list[dict[str, Any]]:
    """``n`` preference records by ``annotators`` annotators (e-mail-like identities).

    A share ``overlap`` of the items is judged by a second annotator too (same prompt and the
    same two responses), who disagrees now and then, so agreement statistics have something
    to measure. Records are what ``rlhf-audit datasets import`` reads: ``prompt``, ``chosen``,
    ``rejected``, ``annotator``, ``labels`` {``guideline_version``, ``item`` (the item's number)}
    and ``created_at``.
    """
    if n < 0 or annotators < 1:
        raise ValueError("n must be >= 0 and annotators >= 1")
    rng = random.Random(seed)
    people = [f"annotator{i + 1:02d}@example.org" for i in range(annotators)]
    records: list[dict[str, Any]] = []
    item = 0
    while len(records) < n:
        t, v = rng.choice(_TOPICS), rng.choice(_VERBS)
        good, bad = rng.choice(_GOOD).format(v=v, t=t), rng.choice(_BAD).format(t=t)
        prompt = f"How can I {v} {t}?"
        first = rng.randrange(annotators)
        judges = [first]
        if annotators > 1 and rng.random() < overlap:
            judges.append((first + 1 + rng.randrange(annotators - 1)) % annotators)
        for k, who in enumerate(judges):
            if len(records) >= n:
                break
            swap = k > 0 and rng.random() < 0.2  # a second opinion that disagrees
            chosen, rejected = (bad, good) if swap else (good, bad)
            records.append({
                "prompt": prompt, "chosen": " " + chosen, "rejected": " " + rejected,
                "annotator": people[who], "labels": {"guideline_version": guideline_version, "item": item},
                "created_at": f"2026-11-{1 + item % 24:02d}T{9 + k:02d}:00:00Z",
            })
        item += 1
    return records
