"""Which entries of the log a bundle covers: a training run, a model, a dataset version, a time range.

A scope is plain data (:class:`Scope`), written into the manifest as JSON. :func:`select` turns it
into the sorted leaf indices of the entries that belong to it:

- ``run``: every event naming the run, the dataset version it trained on (its records, version,
  datasheet, budget events) and the oversight decisions that target the run;
- ``model``: the scope of the run that produced it, plus oversight decisions targeting the model
  and its ``model.released`` events;
- ``dataset`` (+ ``version``, else every version): its records, versions, datasheets, budget
  events and the oversight decisions that target it;
- ``time``: every event whose ``at`` lies in [since, until).

A run, model or dataset scope also holds the evidence freezes (``incident.frozen``, Art. 73) whose
frozen scope touches it: names one of its runs, a model it names, or a dataset version it holds
(a frozen dataset scope without a version touches every version).

Queries go through ``app.events.index.EventIndex`` (kind, run, dataset, model, time); oversight
decisions are matched on their ``target`` here too, which also covers logs indexed before the index
held decisions by their targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.errors import NotFound
from ledger.log import Log

from ..compliance.scope import ReportScope, ScopeError
from ..events.index import EventIndex, IndexedEvent

__all__ = ["Scope", "ScopeError", "select"]

KINDS = ("run", "model", "dataset", "time")
_DATASET_KINDS = ("dataset.record", "dataset.version", "dataset.datasheet", "dataset.budget_set")
_PAGE = 1000


@dataclass(frozen=True)
class Scope(ReportScope):
    """What a bundle is about: a report scope naming something (not the whole log).

    The fields and their checks are :class:`ReportScope`'s, so a bundle's scope is also its
    report's."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ScopeError(f"scope kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        super().__post_init__()

    @classmethod
    def from_json(cls, obj: object) -> Scope:
        if not isinstance(obj, dict):
            raise ScopeError("the scope must be a JSON object")
        unknown = set(obj) - {"kind", "run", "model", "dataset", "version", "since", "until"}
        if unknown:
            raise ScopeError(f"unknown scope field(s): {', '.join(sorted(unknown))}")
        kind = obj.get("kind")
        if kind is None:  # shorthand: {"run": ...}, {"dataset": ..., "version": ...}, ...
            kind = next((k for k in ("run", "model", "dataset") if k in obj), "time")
        return cls(kind=str(kind), **{k: v for k, v in obj.items() if k != "kind"})

    def label(self) -> str:
        """A short name for files and messages: ``run-run_x``, ``dataset-ds_y-v2``, ..."""
        if self.kind == "time":
            return f"time-{self.since}-{self.until}".replace(":", "")
        if self.kind == "dataset":
            return f"dataset-{self.dataset}" + (f"-v{self.version}" if self.version else "")
        return f"{self.kind}-{getattr(self, self.kind)}"


async def _all(index: EventIndex, size: int, **filters: Any) -> dict[int, IndexedEvent]:
    """Every indexed event below ``size`` matching ``filters``, page by page."""
    out: dict[int, IndexedEvent] = {}
    after = None
    while True:
        page = await index.query(**filters, after=after, limit=_PAGE)
        out.update((e.index, e) for e in page if e.index < size)
        if len(page) < _PAGE or page[-1].index >= size:
            return out
        after = page[-1].index


def _target(event: dict[str, Any]) -> dict[str, Any]:
    target = event.get("target")
    return target if isinstance(target, dict) else {}


async def _decisions(index: EventIndex, size: int, **target: object) -> dict[int, IndexedEvent]:
    """Oversight decisions whose ``target`` has these fields (read from the events themselves)."""
    found = await _all(index, size, kind="oversight.decision")
    return {i: e for i, e in found.items()
            if all(_target(e.event).get(k) == v for k, v in target.items() if v is not None)}


async def _dataset(index: EventIndex, size: int, dataset: str,
                   version: int | None) -> dict[int, IndexedEvent]:
    out = await _all(index, size, kind=list(_DATASET_KINDS[:3]), dataset=dataset, dataset_version=version)
    out |= await _all(index, size, kind="dataset.budget_set", dataset=dataset)
    out |= await _decisions(index, size, dataset=dataset, dataset_version=version)
    return out


async def _run(index: EventIndex, size: int, run: str) -> dict[int, IndexedEvent]:
    out = await _all(index, size, run=run)
    if not out:
        raise NotFound(f"the log has no event of run {run!r}")
    used = {(e.event["dataset"], e.event.get("dataset_version")) for e in out.values()
            if e.kind in ("job.submitted", "run.started") and isinstance(e.event.get("dataset"), str)}
    for dataset, version in used:
        out |= await _dataset(index, size, dataset, version if isinstance(version, int) else None)
    out |= await _decisions(index, size, run=run)
    return out


async def _model(index: EventIndex, size: int, model: str) -> dict[int, IndexedEvent]:
    out = await _all(index, size, model=model)
    runs = {e.event["run"] for e in out.values() if isinstance(e.event.get("run"), str)}
    if not runs:
        raise NotFound(f"the log has no run that produced model {model!r}")
    for run in sorted(runs):
        out |= await _run(index, size, run)
    out |= await _decisions(index, size, model=model)
    return out


async def _incidents(index: EventIndex, size: int,
                     found: dict[int, IndexedEvent]) -> dict[int, IndexedEvent]:
    """The ``incident.frozen`` events whose frozen scope names a run, model or dataset version
    that the events ``found`` name."""
    names = {k: {e.event.get(k) for e in found.values() if isinstance(e.event.get(k), str)}
             for k in ("run", "model")}
    versions = {(e.event["dataset"], e.event.get("dataset_version")) for e in found.values()
                if isinstance(e.event.get("dataset"), str)}

    def touches(frozen: object) -> bool:
        if not isinstance(frozen, dict):
            return False
        kind = frozen.get("kind")
        if kind in names:
            return frozen.get(kind) in names[kind]
        version = frozen.get("version")
        return kind == "dataset" and any(d == frozen.get("dataset") and (version is None or v == version)
                                         for d, v in versions)

    return {i: e for i, e in (await _all(index, size, kind="incident.frozen")).items()
            if touches(e.event.get("scope"))}


async def select(log: Log, scope: Scope, size: int, index: EventIndex) -> dict[int, bytes]:
    """The entries below ``size`` that belong to ``scope``: canonical bytes by index, in log order.

    Raises :class:`~ledger.errors.NotFound` when the scope names nothing on the log.
    """
    if scope.kind == "run":
        found = await _run(index, size, scope.run or "")
    elif scope.kind == "model":
        found = await _model(index, size, scope.model or "")
    elif scope.kind == "dataset":
        found = await _dataset(index, size, scope.dataset or "", scope.version)
        if not found:
            which = f" version {scope.version}" if scope.version else ""
            raise NotFound(f"the log has no event of dataset {scope.dataset!r}{which}")
    else:
        since, until = scope.bounds()
        found = await _all(index, size, since=since, until=until)
        if not found:
            raise NotFound(f"the log has no event in [{scope.since}, {scope.until})")
    if scope.kind != "time":
        found |= await _incidents(index, size, found)
    return {i: found[i].data for i in sorted(found)}
