"""Synthetic preference data for the datasets tests (names look like real identities on purpose)."""

from __future__ import annotations

from typing import Any

import orjson

ANNOTATORS = ["alice@example.org", "bob@example.org", "carol@example.org"]


def rows(n: int = 12, *, overlap: bool = True, guideline: str = "v2") -> list[dict[str, Any]]:
    """``n`` records over 4 prompts by 3 annotators: with ``overlap``, prompts are shared."""
    out = []
    for i in range(n):
        prompt = f"Prompt number {i % 4} about tea" if overlap else f"Unique prompt {i}"
        good, bad = f"A helpful answer {i % 4}", f"A rude answer {i % 4}"
        # carol disagrees with the others on prompt 1
        who = ANNOTATORS[i % 3]
        if who == ANNOTATORS[2] and i % 4 == 1:
            good, bad = bad, good
        out.append({"prompt": prompt, "chosen": good, "rejected": bad, "annotator": who,
                    "labels": {"guideline_version": guideline, "topic": "tea" if i % 2 else "coffee"},
                    "created_at": "2026-11-20T10:00:00Z"})
    return out


def jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)
