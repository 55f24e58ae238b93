"""The evidence freeze: bundle the scope, keep it and every artefact it names, say so on the log.

Art. 73 forbids altering the evidence before the authority is informed, so the freeze makes the
scope's evidence unchangeable where the store can (S3: a legal hold on the newest version, on top
of the COMPLIANCE retention; FileStore: the file made read-only) and pins it on the log: the
``incident.frozen`` event carries the bundle's key and SHA-256 (``rlhf-audit verify`` re-hashes
it), the checkpoint the bundle is proved against, and a Merkle root over the held artefacts (the
leaves of :func:`trainers.hashing.directory_root`, with object keys as paths and the hashes the
store returned when the hold was set), so what was held can later be shown unchanged.

Halting is optional and goes through oversight's halt, so each halt is its own Art. 14 decision
(who, why) before the bundle is built: the decisions then appear in a run scope's bundle.
"""

from __future__ import annotations

import asyncio
import io
import zipfile
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.log import Log
from trainers.hashing import directory_root

from ..audit.artefacts import expected_objects, worker_runs
from ..core.database import Database
from ..core.roles import FREEZERS, OVERSIGHT_ROLES
from ..core.settings import Settings
from ..events.index import EventIndex
from ..events.recording import Actor, record
from ..evidence.builder import build_bundle
from ..evidence.scope import Scope, select
from ..jobs.errors import Conflict, Forbidden, JobError, JobNotFound
from ..jobs.service import get_job, new_id
from ..objects import ObjectError, ObjectMissing, ObjectStore
from ..oversight import service as oversight

__all__ = ["KIND", "MIN_REASON", "Frozen", "freeze_evidence", "list_incidents"]

KIND = "incident.frozen"
MIN_REASON = oversight.MIN_JUSTIFICATION


@dataclass(frozen=True)
class Frozen:
    """One freeze: what ``incident.frozen`` says, plus the held keys themselves."""

    incident: str
    leaf_index: int
    reason: str
    scope: dict[str, Any]
    object_key: str
    sha256: str
    manifest_sha256: str
    entries: int
    tree_size: int  # the checkpoint every proof in the bundle is against
    held_root: str
    held: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # named by the log, absent from the store
    changed: list[str] = field(default_factory=list)  # held, but not with the hash the log gives
    halted: list[str] = field(default_factory=list)  # oversight decision ids

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(actor: Actor, reason: str | None) -> str:
    if actor.role not in FREEZERS:
        raise Forbidden(f"freezing evidence needs the overseer or admin role, not {actor.role!r}")
    text = (reason or "").strip()
    if len(text) < MIN_REASON:
        raise JobError(f"a freeze needs a written reason of at least {MIN_REASON} characters "
                       "(Art. 73: what happened, and why this scope)")
    return text


async def _halt(db: Database, log: Log, scope: Scope, reason: str, actor: Actor,
                index: EventIndex) -> list[str]:
    """Halt every queued or running job whose run has an event in scope; the decisions' ids."""
    entries = await select(log, scope, await log.sequenced_size(), index)  # NotFound if empty
    runs = {e.get("run") for e in map(orjson.loads, entries.values()) if isinstance(e, dict)}
    decisions = []
    for run in sorted(r for r in runs if isinstance(r, str)):
        try:
            job = await get_job(db, run)
            if job.status in ("queued", "running") and not job.halted:
                decisions.append((await oversight.halt(db, log, run, reason, actor)).decision_id)
        except (JobNotFound, Conflict):  # a team's own script has no job; or it just finished
            continue
    return decisions


def _named(bundle: bytes, completed: set[str]) -> dict[str, str]:
    """Object key -> SHA-256 the log gives, for every stored artefact the bundle's entries name."""
    named: dict[str, str] = {}
    with zipfile.ZipFile(io.BytesIO(bundle)) as z:
        names = sorted((n for n in z.namelist() if n.startswith("entries/")),
                       key=lambda n: int(n.removeprefix("entries/").removesuffix(".json")))
        for name in names:
            event = orjson.loads(z.read(name))
            idx = int(name.removeprefix("entries/").removesuffix(".json"))
            if isinstance(event, dict):
                named |= {e.key: e.sha256 for e in expected_objects(idx, event, completed) or []}
    return named


def _hold(objects: ObjectStore, named: dict[str, str]) -> tuple[dict[str, str], list[str], list[str]]:
    """Hold each object, then hash what is held: (held key -> sha256, missing keys, changed keys)."""
    held: dict[str, str] = {}
    missing: list[str] = []
    for key in sorted(named):
        try:
            objects.legal_hold(key)
            held[key] = objects.sha256(key)
        except (ObjectMissing, ObjectError):
            missing.append(key)
    return held, missing, [k for k, digest in held.items() if digest != named[k]]


async def freeze_evidence(db: Database, log: Log, scope: Scope, reason: str | None, actor: Actor, *,
                          objects: ObjectStore, evidence_key: Ed25519PrivateKey,
                          index: EventIndex | None = None, halt: bool = False, settings: Settings) -> Frozen:
    """Freeze the evidence of ``scope`` (see the module docstring) and record ``incident.frozen``;
    the bundle's report is evaluated under the caller's ``settings``.

    Raises :class:`~app.jobs.errors.Forbidden` for a role that may not freeze (or halt),
    :class:`~app.jobs.errors.JobError` for a missing or too short reason and
    :class:`~ledger.errors.NotFound` when the scope names nothing on the log.
    """
    text = _check(actor, reason)
    if halt and actor.role not in OVERSIGHT_ROLES:
        raise Forbidden("halting runs is an oversight decision: it needs a named overseer or admin")
    index = index or EventIndex(db, log)
    halted = await _halt(db, log, scope, text, actor, index) if halt else []
    bundle = await build_bundle(db, log, scope, evidence_key=evidence_key, actor=actor, record_event=False,
                                index=index, settings=settings)
    incident = new_id("inc")
    key = f"incidents/{incident}/bundle.zip"
    stored = await asyncio.to_thread(objects.put_bytes, key, bundle.data)
    await asyncio.to_thread(objects.legal_hold, key)
    named = _named(bundle.data, await worker_runs(db))
    held, missing, changed = await asyncio.to_thread(_hold, objects, named)
    root = directory_root(held)
    entry = await record(log, KIND, actor, incident=incident, reason=text, scope=scope.to_json(),
                         object_key=key, sha256=stored.sha256,
                         manifest_sha256="sha256:" + bundle.manifest_sha256, entries=bundle.entries,
                         tree_size=bundle.tree_size, held=len(held), held_root=root,
                         missing=len(missing), changed=len(changed), halted=halted or None)
    return Frozen(incident, entry.leaf_index, text, scope.to_json(), key, stored.sha256,
                  "sha256:" + bundle.manifest_sha256, bundle.entries, bundle.tree_size, root,
                  sorted(held), missing, changed, halted)


async def list_incidents(index: EventIndex, *, limit: int = 100) -> list[dict[str, Any]]:
    """The ``incident.frozen`` events on the log, newest first, each with its leaf index."""
    found = await index.query(kind=KIND, descending=True, limit=limit)
    return [{"leaf_index": e.index, **e.event} for e in found]
