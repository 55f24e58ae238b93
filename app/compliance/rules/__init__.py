"""The rules, one module per regulation: ``eu_ai_act`` (Regulation (EU) 2024/1689) and ``gdpr``,
and the pack the product checks by default."""

from __future__ import annotations

from ..pack import Pack
from .eu_ai_act import EU_AI_ACT
from .gdpr import GDPR

__all__ = ["DEFAULT_PACK", "EU_AI_ACT", "GDPR"]

DEFAULT_PACK = Pack(
    "eu-ai-act-2024-1689+gdpr", "2026.11", EU_AI_ACT + GDPR,
    "Regulation (EU) 2024/1689 (AI Act) Art. 10, 12, 14, 19 and Regulation (EU) 2016/679 (GDPR) "
    "Art. 5 and 25, as far as an RLHF audit log can show them",
)
