"""The artefact audit: re-hash what the object store holds and compare it with the log.

The log carries the SHA-256 of every artefact it names: each file of a training checkpoint
(``run.checkpoint``: ``object_prefix`` and ``files``) and of a final model (``run.completed``;
a worker stores it under ``runs/<run>/final``), evidence bundles (``bundle.created``), compliance
reports (``report.generated``), the encrypted archive of a dataset version (``dataset.version``:
``records_object``, ``records_sha256``) and incident freezes (``incident.frozen``). A store that
lost or changed one of them (on a versioned bucket: whose newest version differs) is a problem
naming the entry, the key, the hash the log expects and the one the store has.

The entries are read from the log itself, not from the event index (a derived table that
could be stale or edited), like the ledger's self-audit (:mod:`ledger.audit`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa

from ledger.log import Log

from ..core.database import Database
from ..core.errors import Unavailable
from ..objects import ObjectError, ObjectMissing, ObjectStore

__all__ = ["ArtefactProblem", "ArtefactReport", "Expected", "audit_artefacts", "expected_objects",
           "worker_runs"]

KINDS = ("run.checkpoint", "run.completed", "bundle.created", "report.generated", "dataset.version",
         "incident.frozen")
_NEEDLES = tuple(b'"kind":"' + k.encode() + b'"' for k in KINDS)  # canonical JSON: no spaces
_SINGLE = {"bundle.created": ("object_key", "sha256"), "report.generated": ("object_key", "sha256"),
           "incident.frozen": ("object_key", "sha256"),
           "dataset.version": ("records_object", "records_sha256")}


@dataclass(frozen=True)
class Expected:
    """One object the log names, and the hash it gives for it."""

    leaf_index: int
    kind: str
    key: str
    sha256: str


@dataclass(frozen=True)
class ArtefactProblem:
    leaf_index: int
    kind: str
    key: str
    expected: str
    actual: str | None  # None: no such object

    def __str__(self) -> str:
        where = f"entry {self.leaf_index} ({self.kind}): object {self.key}"
        if self.actual is None:
            return f"{where} is missing from the object store; the log says {self.expected}"
        return f"{where} has {self.actual}; the log says {self.expected}"


@dataclass
class ArtefactReport:
    objects_checked: int = 0
    not_stored: int = 0  # entries naming artefacts that were never stored here (a team's own script)
    problems: list[ArtefactProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _files(idx: int, kind: str, prefix: str, files: Any) -> Iterator[Expected]:
    if isinstance(files, dict):
        for rel, digest in sorted(files.items()):
            yield Expected(idx, kind, f"{prefix.rstrip('/')}/{rel}", str(digest))


def expected_objects(idx: int, event: dict[str, Any], worker_runs: set[str]) -> list[Expected] | None:
    """What entry ``idx`` says the store holds; None when it names artefacts stored elsewhere.

    ``worker_runs``: runs a worker completed, whose final model it stored under ``runs/<run>/final``.
    """
    kind = event.get("kind")
    if kind in _SINGLE:
        key_field, hash_field = _SINGLE[kind]
        key, digest = event.get(key_field), event.get(hash_field)
        if not isinstance(key, str) or not isinstance(digest, str):
            return [] if kind in ("report.generated", "bundle.created", "dataset.version") else None
        return [Expected(idx, kind, key, digest)]
    if kind == "run.checkpoint":
        prefix = event.get("object_prefix")
        return list(_files(idx, kind, prefix, event.get("files"))) if isinstance(prefix, str) else None
    if kind == "run.completed":
        prefix = event.get("object_prefix")
        if not isinstance(prefix, str):
            run = event.get("run")
            if run not in worker_runs:
                return None
            prefix = f"runs/{run}/final"
        return list(_files(idx, kind, prefix, event.get("files")))
    return []


async def worker_runs(db: Database) -> set[str]:
    """Runs the jobs table says completed (a ledger-only database has no jobs table: none)."""
    from ..jobs.schema import jobs

    try:
        async with db.connect("reading completed runs") as conn:
            rows = await conn.execute(sa.select(jobs.c.run).where(jobs.c.status == "completed"))
            return {str(r) for r in rows.scalars()}
    except Unavailable:
        return set()


async def audit_artefacts(db: Database, log: Log, objects: ObjectStore, *,
                          progress: Callable[[str], None] | None = None) -> ArtefactReport:
    """Check every object every entry names; one :class:`ArtefactProblem` per mismatch."""
    report = ArtefactReport()
    completed = await worker_runs(db)
    size = await log.sequenced_size()
    wanted: list[Expected] = []
    async for chunk in log.scan_entries(0, size):
        for idx, raw in chunk:
            data = bytes(raw)
            if not any(n in data for n in _NEEDLES):
                continue
            try:
                event = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(event, dict):
                continue
            found = expected_objects(int(idx), event, completed)
            if found is None:
                report.not_stored += 1
            else:
                wanted += found
    if progress:
        progress(f"re-hashing {len(wanted)} stored object(s) named by the log")
    actual: dict[str, str | None] = {}
    for e in wanted:
        if e.key not in actual:
            try:
                actual[e.key] = await asyncio.to_thread(objects.sha256, e.key)
            except (ObjectMissing, ObjectError):
                actual[e.key] = None
            report.objects_checked += 1
        if actual[e.key] != e.sha256:
            report.problems.append(ArtefactProblem(e.leaf_index, e.kind, e.key, e.sha256, actual[e.key]))
    return report
