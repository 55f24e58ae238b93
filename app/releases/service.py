"""Attesting a released model: the model signature, its SLSA provenance and the release's receipt.

:func:`attest_release` reads everything from the log (and the job's row for where the model is):
the ``model.released`` entry, the run's ``job.submitted``, ``run.started`` (one per segment) and
the entry that logged the released directory's files (``run.completed``, or ``run.checkpoint``
after a rollback), and the approval the release names. It checks the object store holds exactly
the logged files under the model's prefix (names only: the bytes are checked by whoever runs
``model_signing verify``), signs, proves, and stores the artefacts under ``releases/<model>/``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from ledger.errors import NotFound
from ledger.log import Log

from ..core.database import Database
from ..core.errors import Conflict
from ..core.keyring import Keyring
from ..events.index import EventIndex, IndexedEvent
from ..objects import ObjectStore
from ..oversight.service import get_decision, release_state
from .keys import key_id, public_key_pem, record_release_key
from .model_signature import sign_model
from .provenance import LoggedEntry, sign_statement, statement
from .receipts import issue_receipt

__all__ = ["ARTEFACTS", "Attestation", "attest_release", "prefix_of"]

# name under releases/<model>/ -> what it is
ARTEFACTS = {
    "model.sig": "OpenSSF model-signing signature (Sigstore bundle v0.3, DSSE, ECDSA P-256)",
    "provenance.dsse.json": "in-toto Statement v1, SLSA Provenance v1, DSSE (ECDSA P-256)",
    "release.receipt.cose": "COSE receipt: RFC 9162 inclusion of the model.released entry (EdDSA, log key)",
    "release-entry.json": "the model.released entry's canonical bytes",
    "checkpoint.note": "the log's signed checkpoint the receipt's root belongs to",
    "release-key.pem": "the release-signing public key (SPKI PEM), as keys.release_key records it",
    "log-key.vkey": "the log's C2SP verifier key (the receipt's signer)",
}


def prefix_of(model: str) -> str:
    return f"releases/{model}"


@dataclass(frozen=True)
class Attestation:
    model: str
    run: str
    release_index: int
    key_entry: int
    key_id: str
    model_digest: str
    tree_size: int
    objects: dict[str, str] = field(default_factory=dict)  # artefact -> object key

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


async def _run_events(index: EventIndex, run: str) -> list[IndexedEvent]:
    out: list[IndexedEvent] = []
    after = None
    while True:
        page = await index.query(run=run, kind=["job.submitted", "run.started", "run.checkpoint",
                                                "run.completed"], after=after, limit=500)
        out += page
        if len(page) < 500:
            return out
        after = page[-1].index


def _artefact(events: list[IndexedEvent], root: str, model: str) -> IndexedEvent:
    """The entry that logged the released directory: ``run.completed`` with that root, else the
    ``run.checkpoint`` a rollback pointed the model at."""
    for kind in ("run.completed", "run.checkpoint"):
        for e in reversed(events):
            if e.kind == kind and e.event.get("root") == root and e.event.get("files"):
                return e
    raise Conflict(f"model {model}: no run.completed or run.checkpoint entry logs the files of its "
                   f"released root {root}")


def _check_stored(objects: ObjectStore, prefix: str, files: dict[str, str], model: str) -> None:
    stored = {key.removeprefix(prefix + "/") for key in objects.list(prefix)}
    logged = {p for p in files if not p.rsplit("/", 1)[-1].startswith(".")}
    if stored != logged:
        missing, extra = sorted(logged - stored), sorted(stored - logged)
        raise Conflict(f"model {model}: the object store under {prefix}/ does not hold the logged files "
                       f"(missing: {missing[:5]}, not logged: {extra[:5]})")


async def _checkpoint(log: Log, index: int) -> Any:
    try:
        return await log.checkpoint_covering(index)
    except NotFound:
        await log.integrate()
        return await log.checkpoint_covering(index)


async def attest_release(db: Database, log: Log, keyring: Keyring, objects: ObjectStore,
                         model: str) -> Attestation:
    """Sign, attest and prove the release of ``model``; store the artefacts (see :data:`ARTEFACTS`)."""
    state = await release_state(db, model)
    if state.release is None:
        raise Conflict(f"model {state.model} is not released ({state.state}): only a released model is "
                       "attested")
    at = state.release["leaf_index"]
    released = LoggedEntry(at, await log.entry(at))
    root = released.event["root"]
    index = EventIndex(db, log)
    await index.catch_up()
    events = await _run_events(index, state.run)
    artefact = _artefact(events, root, state.model)
    files: dict[str, str] = artefact.event["files"]
    prefix = artefact.event.get("object_prefix")
    if not prefix:
        raise Conflict(f"model {state.model}: entry {artefact.index} names no object_prefix for its files")
    await asyncio.to_thread(_check_stored, objects, prefix, files, state.model)
    approval = await get_decision(db, state.release["approval"])

    key = keyring.release_signer
    key_at = await record_release_key(log, index, key)
    signature = sign_model(state.model, files, key)
    started = [LoggedEntry(e.index, e.data) for e in events if e.kind == "run.started"]
    submitted = [LoggedEntry(e.index, e.data) for e in events if e.kind == "job.submitted"]
    completed = [LoggedEntry(e.index, e.data) for e in events if e.kind == "run.completed"]
    if not started or not completed:
        raise Conflict(f"model {state.model}: run {state.run} has no run.started or run.completed entry")
    logged = {e.index: e for e in [*submitted, *started, *completed]}
    logged[artefact.index] = LoggedEntry(artefact.index, artefact.data)
    logged[approval.leaf_index] = LoggedEntry(approval.leaf_index, await log.entry(approval.leaf_index))
    logged[at] = released
    logged[key_at] = LoggedEntry(key_at, await log.entry(key_at))
    body = statement(model=state.model, model_digest=signature.digest, model_root=root, origin=log.origin,
                     run=state.run, spec=submitted[0].event.get("spec") if submitted else None,
                     started=started, completed=completed[-1],
                     byproducts=[logged[i] for i in sorted(logged)])
    provenance = sign_statement(body, key)

    checkpoint = await _checkpoint(log, at)
    proof = await log.inclusion_proof(at, checkpoint.size)
    receipt = issue_receipt(log.signer, proof, checkpoint.checkpoint.root_hash)

    out = prefix_of(state.model)
    data = {
        "model.sig": signature.bundle,
        "provenance.dsse.json": provenance,
        "release.receipt.cose": receipt,
        "release-entry.json": released.data,
        "checkpoint.note": checkpoint.note,
        "release-key.pem": public_key_pem(key.public_key()),
        "log-key.vkey": log.signer.verifier.vkey.encode() + b"\n",
    }
    stored = {}
    for name, blob in data.items():
        stored[name] = (await asyncio.to_thread(objects.put_bytes, f"{out}/{name}", blob)).key
    result = Attestation(state.model, state.run, at, key_at, key_id(key.public_key()), signature.digest,
                         checkpoint.size, stored)
    summary = json.dumps(result.to_dict(), indent=2, sort_keys=True).encode() + b"\n"
    await asyncio.to_thread(objects.put_bytes, f"{out}/attestation.json", summary)
    return result
