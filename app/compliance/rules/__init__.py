"""The rules, one module per regulation: ``eu_ai_act`` (Regulation (EU) 2024/1689) and ``gdpr``,
and the pack the product checks by default (its name, version and obligations from ``packs/eu.toml``)."""

from __future__ import annotations

from ..obligations import load_pack_file
from ..pack import Pack
from .eu_ai_act import EU_AI_ACT
from .gdpr import GDPR

__all__ = ["DEFAULT_PACK", "EU_AI_ACT", "GDPR"]

_EU = load_pack_file()  # packs/eu.toml: name, version, description and the obligations
DEFAULT_PACK = Pack(_EU.name, _EU.version, EU_AI_ACT + GDPR, _EU.description, _EU.obligations)
