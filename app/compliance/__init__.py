"""Compliance: rules as code in a versioned regulation pack, checks, alerts and reports.

- ``pack``: rules, packs and the context rules read the log through;
- ``rules``: the EU AI Act (2024/1689) and GDPR rules, and ``DEFAULT_PACK``;
- ``obligations``: the pack file (``packs/eu.toml``): each obligation's article, legal text version,
  application date and the rules and sections covering it;
- ``documentation``: the operator's documentation events (``doc.recorded``) rules and Annex IV read;
- ``engine``: ``run_checks`` (evaluate, record ``compliance.checked``, store, alert);
- ``alerts``: open/resolved alerts and the webhook;
- ``schedule``: the ARQ cron job and the in-process loop;
- ``reports``: ``build_report`` (obligations, Annex IV draft, Art. 12/14/10 sections, DP, retention) as
  HTML, PDF and JSON; ``api``: the HTTP endpoints.
"""

from __future__ import annotations

from .alerts import Alert, list_alerts
from .config import ComplianceConfig
from .engine import CheckRun, evaluate, latest_check, run_checks
from .pack import CheckContext, Outcome, Pack, Rule, RuleResult
from .rules import DEFAULT_PACK

__all__ = [
    "DEFAULT_PACK",
    "Alert",
    "CheckContext",
    "CheckRun",
    "ComplianceConfig",
    "Outcome",
    "Pack",
    "Rule",
    "RuleResult",
    "evaluate",
    "latest_check",
    "list_alerts",
    "run_checks",
]
