"""Documentation events: what the operator records about the system (``doc.recorded``, docs/events.md).

The log shows what training did; it cannot show what the system is for, why it was designed so, how
it was validated or which security measures protect it. The operator records those as
``doc.recorded`` {``topic``, ``text`` or ``uri`` + ``sha256``, optionally ``model`` / ``run`` /
``dataset`` (+ ``dataset_version``) naming what it documents}, through ``POST /api/v1/events`` or
``rlhf-audit append``; the envelope says who (``actor``, ``role``) and when. The rules and the
Annex IV draft read them here, so both agree on what counts as recorded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .pack import CheckContext, body

__all__ = ["KIND", "TOPICS", "covering", "describe", "documents", "valid"]

KIND = "doc.recorded"
#: topic -> what it documents (the Annex IV point or article it serves)
TOPICS = {
    "intended_purpose": "intended purpose, provider and version (Annex IV 1(a); Art. 13(3)(a)-(b))",
    "system_description": "general description of the system and how it interacts with other "
                          "hardware and software (Annex IV 1(b)-(g))",
    "instructions_for_use": "instructions for use for deployers (Annex IV 1(h); Art. 13)",
    "design_choices": "design specifications, key design choices and their rationale (Annex IV 2(b))",
    "architecture": "system architecture and computational resources (Annex IV 2(c))",
    "changes": "pre-determined changes and the measures that keep the system compliant "
               "(Annex IV 2(f), 6)",
    "validation": "validation and testing procedures, metrics and reports (Annex IV 2(g); Art. 15(1)-(3)); "
                  "`metrics` {name: number}",
    "cybersecurity": "cybersecurity and security-of-processing measures (Annex IV 2(h); Art. 15(4)-(5); "
                     "GDPR Art. 32)",
    "metrics_rationale": "appropriateness of the performance metrics (Annex IV 4)",
    "risk_management": "the risk management system (Annex IV 5; Art. 9)",
    "standards": "harmonised standards or other specifications applied (Annex IV 7)",
    "declaration_of_conformity": "the EU declaration of conformity (Annex IV 8; Art. 47)",
    "post_market_monitoring": "the post-market monitoring plan (Annex IV 9; Art. 72)",
    "dpia": "data protection impact assessment (GDPR Art. 35)",
    "lawful_basis": "lawful basis of processing a dataset (GDPR Art. 6(1)); `basis`",
    "special_categories": "why special categories of personal data are processed for bias detection "
                          "and the safeguards (AI Act Art. 10(5))",
    "gpai_base_model": "the base model is a general-purpose AI model (Art. 3(63)); `general_purpose`: true",
    "gpai_technical_documentation": "technical documentation of the model (Art. 53(1)(a), Annex XI)",
    "gpai_downstream_information": "information for downstream providers (Art. 53(1)(b), Annex XII)",
    "copyright_policy": "policy to comply with Union copyright law (Art. 53(1)(c))",
    "training_content_summary": "public summary of the training content (Art. 53(1)(d))",
}
SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
LAWFUL_BASES = ("consent", "contract", "legal_obligation", "vital_interests", "public_task",
                "legitimate_interests")  # GDPR Art. 6(1)(a)-(f)


def valid(doc: dict[str, Any]) -> bool:
    """Whether a ``doc.recorded`` documents something: a known topic and a non-empty ``text``, or a
    ``uri`` with the ``sha256`` of the document it points to (a link alone proves nothing)."""
    if doc.get("topic") not in TOPICS:
        return False
    text, uri, digest = doc.get("text"), doc.get("uri"), doc.get("sha256")
    if isinstance(text, str) and text.strip():
        return True
    return (isinstance(uri, str) and bool(uri.strip())
            and isinstance(digest, str) and bool(SHA256.fullmatch(digest)))


async def documents(ctx: CheckContext, *topics: str) -> list[Any]:
    """The valid documentation events of ``topics`` up to the context's tree size, in log order."""
    return [e for e in await ctx.events(kind=KIND) if valid(body(e)) and body(e).get("topic") in topics]


def covering(docs: Iterable[Any], *, model: Any = None, run: Any = None, dataset: Any = None,
             system_wide: bool = True) -> list[Any]:
    """The documents that cover a model, run or dataset: those naming it, and (``system_wide``)
    those naming none of model, run or dataset (they document the whole system)."""
    out = []
    for e in docs:
        b = body(e)
        named = {k: b.get(k) for k in ("model", "run", "dataset") if b.get(k) is not None}
        if not named:
            if system_wide:
                out.append(e)
        elif ((model is not None and named.get("model") == model)
              or (run is not None and named.get("run") == run)
              or (dataset is not None and named.get("dataset") == dataset)):
            out.append(e)
    return out


def describe(e: Any) -> str:
    """One documentation event in words: its text (shortened) or its link and hash, and who recorded it."""
    b = body(e)
    text = b.get("text")
    if isinstance(text, str) and text.strip():
        what = text.strip() if len(text) <= 400 else text.strip()[:397] + "..."
    else:
        what = f"document {b.get('uri')} (sha256 {b.get('sha256')})"
    metrics = b.get("metrics")
    if isinstance(metrics, dict) and metrics:
        shown = sorted(metrics.items(), key=lambda kv: str(kv[0]))
        what += "; metrics: " + ", ".join(f"{k} {v}" for k, v in shown)
    about = ", ".join(f"{k} {b[k]}" for k in ("model", "run", "dataset") if b.get(k) is not None)
    return (f"{what} [recorded {b.get('at') or 'at an unknown time'} by a {b.get('role') or 'unknown'} role"
            + (f", for {about}" if about else "") + "]")
