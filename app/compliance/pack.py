"""Regulation packs: versioned sets of rules that check the log, each citing its article.

A rule is a small object: an id, the article it enforces, a title, and an async ``check``
that reads the log through a :class:`CheckContext` and returns an :class:`Outcome`. A pack
names the regulations and a version (``eu-ai-act-2024-1689+gdpr@2026.12``) so that every
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
    "by_run",
    "describe_segments",
    "segment_entries",
    "segments",
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


def by_run(started: Sequence[Any]) -> dict[Any, list[Any]]:
    """``run.started`` events grouped by run, in log order: a halted run that was resumed records
    one per segment under the same ``run``, and is still one run (docs/events.md)."""
    out: dict[Any, list[Any]] = {}
    for e in sorted(started, key=lambda e: e.index):
        out.setdefault(body(e).get("run"), []).append(e)
    return out


def segments(starts: Sequence[Any]) -> list[dict[str, Any]]:
    """A run's segments from its ``run.started`` events: number, first global step, and the decision
    (a leaf index, or an id on older entries) that resumed it with the checkpoint it resumed from."""
    out = []
    for n, e in enumerate(starts, 1):
        b = body(e)
        resumed = b.get("resumed_from") if isinstance(b.get("resumed_from"), dict) else {}
        step = resumed.get("step")
        out.append({"segment": b.get("segment") or n, "index": e.index,
                    "from_step": step if isinstance(step, int) and not isinstance(step, bool) else 0,
                    "resumed_by": resumed.get("decision"), "checkpoint_root": resumed.get("checkpoint_root")})
    return out


def segment_entries(segs: Sequence[dict[str, Any]]) -> list[int]:
    """The entries behind a run's segments: each ``run.started`` and each resuming decision."""
    by = [s["resumed_by"] for s in segs]
    return [s["index"] for s in segs] + [i for i in by if isinstance(i, int) and not isinstance(i, bool)]


def describe_segments(segs: Sequence[dict[str, Any]]) -> str:
    """'' for a run of one segment, else e.g. 'in 2 segments (segment 1 from step 0; segment 2 from
    step 119, resumed by decision #40)'."""
    if len(segs) < 2:
        return ""
    parts = []
    for s in segs:
        by = s["resumed_by"]
        who = (f", resumed by decision #{by}" if isinstance(by, int) and not isinstance(by, bool)
               else f", resumed by decision {by}" if by else "")
        parts.append(f"segment {s['segment']} from step {s['from_step']}{who}")
    return f"in {len(segs)} segments ({'; '.join(parts)})"


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
    #: what each obligation is, from when it applies, what covers it (``obligations.Obligation``)
    obligations: tuple[Any, ...] = ()

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
