"""Regulation packs: versioned sets of rules that check the log, each citing its article.

A rule is a small object: an id, the article it enforces, a title, and an async ``check``
that reads the log through a :class:`CheckContext` and returns an :class:`Outcome`. A pack
names the regulations and a version (``eu-ai-act-2024-1689+gdpr@2026.11``) so that every
result on the log says exactly which rules produced it. Packs compose: ``Pack(..., rules=
EU_AI_ACT + GDPR)``.

Rules read the log only through the event index (``app.events.index``) and the ledger's own
store (checkpoints, timestamps, the self-audit), bounded to one tree size so a check or a
report describes one fixed, provable state of the log.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from ledger.log import Log

from .config import ComplianceConfig

__all__ = [
    "CheckContext",
    "body",
    "Outcome",
    "Pack",
    "Rule",
    "RuleResult",
    "Status",
    "failed",
    "not_applicable",
    "passed",
]

Status = Literal["pass", "fail", "not_applicable"]
PAGE = 1000
MAX_SUMMARY = 2000
_log = logging.getLogger("app.compliance")


@dataclass(frozen=True)
class Outcome:
    """What a rule's check found: a status, one readable sentence, the entries behind it."""

    status: Status
    summary: str
    entries: tuple[int, ...] = ()


def passed(summary: str, entries: Sequence[int] = ()) -> Outcome:
    return Outcome("pass", summary, tuple(sorted(set(entries))))


def failed(summary: str, entries: Sequence[int] = ()) -> Outcome:
    return Outcome("fail", summary, tuple(sorted(set(entries))))


def not_applicable(summary: str, entries: Sequence[int] = ()) -> Outcome:
    return Outcome("not_applicable", summary, tuple(sorted(set(entries))))


@dataclass(frozen=True)
class RuleResult:
    """One rule's result, in the shape ``compliance.checked`` carries (docs/events.md)."""

    rule: str
    article: str
    status: Status
    summary: str
    entries: tuple[int, ...]
    title: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "article": self.article, "status": self.status,
                "summary": self.summary, "entries": list(self.entries)}

    @classmethod
    def from_json(cls, obj: dict[str, Any], title: str = "") -> RuleResult:
        return cls(str(obj["rule"]), str(obj["article"]), obj["status"], str(obj["summary"]),
                   tuple(int(i) for i in obj.get("entries", ())), title)


def body(indexed: Any) -> dict[str, Any]:
    """The event an index hit carries, as a dict (an entry that is not a JSON object: empty)."""
    event = indexed.event
    return event if isinstance(event, dict) else {}


Check = Callable[["CheckContext"], Awaitable[Outcome]]


@dataclass(frozen=True)
class Rule:
    """A check of the log against one obligation."""

    id: str
    article: str
    title: str
    check: Check
    #: how many backing entries a result lists at most (the log event must stay small)
    max_entries: int = 200

    async def evaluate(self, ctx: CheckContext) -> RuleResult:
        try:
            outcome = await self.check(ctx)
        except Exception as e:  # a broken rule is a failed check, never a crashed run
            _log.exception("compliance rule %s could not run", self.id)
            outcome = failed(f"the check could not run: {type(e).__name__}: {e}")
        entries = outcome.entries
        summary = outcome.summary
        if len(entries) > self.max_entries:
            summary += f" (first {self.max_entries} of {len(entries)} backing entries listed)"
            entries = entries[: self.max_entries]
        if len(summary) > MAX_SUMMARY:  # the whole check is one log entry (at most 64 KiB)
            summary = summary[: MAX_SUMMARY - 3] + "..."
        return RuleResult(self.id, self.article, outcome.status, summary, entries, self.title)


@dataclass(frozen=True)
class Pack:
    """A named, versioned list of rules."""

    name: str
    version: str
    rules: tuple[Rule, ...]
    description: str = ""

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


@dataclass
class CheckContext:
    """What rules read: the log (bounded to ``tree_size``), its event index and the settings.

    Queries are paged through the index and cached for the run, since several rules ask for the
    same kinds (``run.started``, ``oversight.decision``).
    """

    log: Log
    index: Any  # app.events.index.EventIndex
    config: ComplianceConfig
    tree_size: int
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: results shared between rules and the report (the self-audit, the privacy accounting)
    memo: dict[str, Any] = field(default_factory=dict)
    _cache: dict[tuple[tuple[str, Any], ...], list[Any]] = field(default_factory=dict)

    async def events(self, **filters: Any) -> list[Any]:
        """Every indexed event matching ``filters`` (EventIndex.query's keywords) below tree_size."""
        key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in filters.items()))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        out: list[Any] = []
        after: int | None = None
        while True:
            page = await self.index.query(**filters, after=after, limit=PAGE)
            out += [e for e in page if e.index < self.tree_size]
            if len(page) < PAGE or page[-1].index >= self.tree_size - 1:
                break
            after = page[-1].index
        self._cache[key] = out
        return out

    async def pages(self, **filters: Any) -> Any:
        """Like :meth:`events`, page by page and uncached (for scans of the whole log)."""
        after: int | None = None
        while True:
            page = await self.index.query(**filters, after=after, limit=PAGE)
            batch = [e for e in page if e.index < self.tree_size]
            if batch:
                yield batch
            if len(page) < PAGE or page[-1].index >= self.tree_size - 1:
                return
            after = page[-1].index
