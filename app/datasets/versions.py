"""Reading dataset versions: loading one for training, rejections, listings.

:func:`load_version` is what training jobs call. It checks before it decrypts: the version row's
root must equal the root of the ``dataset.version`` event on the log and the root recomputed
over the stored commitments, and every decrypted record must open its commitment. So a job
trains on exactly the version the log names, or fails.

Rejections are state flags only: the oversight module records the ``oversight.decision`` event
(who, why) and then calls :func:`reject_version` or :func:`reject_annotator`.
"""

from __future__ import annotations

import asyncio
import base64
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.core.database import Database
from app.core.keyring import Keyring
from ledger.canonical import canonicalize
from ledger.errors import VerificationError
from ledger.events import Commitment, Opening
from ledger.log import Log
from ledger.merkle import leaf_hash, root_of

from .errors import DatasetRejected, RecordsUnreadable, UnknownDataset, UnknownSubject
from .records import check_pseudonym, dataset_id, now, open_record, record_aad, unwrap_key
from .schema import data_subjects, dataset_budgets, dataset_records, dataset_versions, rejected_annotators

__all__ = [
    "DatasetVersion",
    "PreferenceRecord",
    "describe_dataset",
    "is_rejected",
    "list_datasets",
    "load_version",
    "reject_annotator",
    "reject_version",
    "version_row",
]


@dataclass(frozen=True)
class PreferenceRecord:
    position: int
    prompt: str
    chosen: str
    rejected: str
    annotator: str  # pseudonym
    labels: dict[str, Any]


@dataclass(frozen=True)
class DatasetVersion:
    dataset: str
    version: int
    root: str  # base64, as in the dataset.version event
    records: list[PreferenceRecord]
    excluded: int  # records left out: rejected annotators, erased data subjects


_complete = dataset_versions.c.state == "complete"


async def version_row(db: Database, dataset: str, version: int | None = None) -> Any:
    """The complete version row (the latest when ``version`` is None), or UnknownDataset."""
    name = dataset_id(dataset)
    v = dataset_versions.c
    query = sa.select(dataset_versions).where(v.dataset == name, _complete)
    query = query.where(v.version == version) if version is not None else query.order_by(v.version.desc())
    async with db.connect("reading a dataset version") as conn:
        row = (await conn.execute(query.limit(1))).first()
    if row is None:
        raise UnknownDataset(f"no dataset {name}" if version is None else f"{name} has no version {version}")
    return row


async def _rejected_annotators(db: Database) -> set[str]:
    async with db.connect("reading rejections") as conn:
        return set((await conn.execute(sa.select(rejected_annotators.c.pseudonym))).scalars())


async def _check_logged_root(log: Log, row: Any) -> None:
    logged = orjson.loads(await log.entry(row.version_leaf))
    expected = {"kind": "dataset.version", "dataset": row.dataset, "dataset_version": row.version,
                "root": base64.b64encode(row.root).decode()}
    if any(logged.get(k) != val for k, val in expected.items()):
        raise RecordsUnreadable(f"{row.dataset} version {row.version} does not match its dataset.version "
                           f"event (entry {row.version_leaf}) on the log")


async def load_version(db: Database, log: Log, keyring: Keyring, dataset: str, version: int | None = None,
                       *, exclude_rejected: bool = True) -> DatasetVersion:
    """Decrypt a version for training (the latest when ``version`` is None).

    With ``exclude_rejected`` (the default), a rejected version raises DatasetRejected and the
    records of rejected annotators are left out; erased records are always left out.
    """
    row = await version_row(db, dataset, version)
    if row.rejected and exclude_rejected:
        raise DatasetRejected(f"{row.dataset} version {row.version} was rejected by an overseer: "
                              "no job may train on it")
    await _check_logged_root(log, row)
    skip = await _rejected_annotators(db) if exclude_rejected else set()
    r = dataset_records.c
    query = (sa.select(r.position, r.annotator, r.commitment, r.nonce, r.ciphertext,
                       data_subjects.c.wrapped_key)
             .select_from(dataset_records.outerjoin(data_subjects, data_subjects.c.id == r.subject_id))
             .where(r.version_id == row.id).order_by(r.position))
    async with db.connect("reading records") as conn:
        stored = (await conn.execute(query)).all()
    out = await asyncio.to_thread(_open_all, keyring, row, stored, skip)  # CPU-bound: off the loop
    return DatasetVersion(row.dataset, row.version, base64.b64encode(row.root).decode(), out,
                          row.records - len(out))


def _open_all(keyring: Keyring, row: Any, stored: Sequence[Any], skip: set[str]) -> list[PreferenceRecord]:
    """Check the stored commitments against the root, then decrypt and open every usable record."""
    digests = [bytes(s.commitment) for s in stored]
    if len(stored) != row.records or root_of([leaf_hash(d) for d in digests]) != bytes(row.root):
        raise RecordsUnreadable(f"the stored records of {row.dataset} version {row.version} do not match "
                           "its logged Merkle root")
    keys: dict[str, bytes] = {}
    out: list[PreferenceRecord] = []
    for s in stored:
        if s.ciphertext is None or s.wrapped_key is None or s.annotator in skip:
            continue
        if s.annotator not in keys:
            keys[s.annotator] = unwrap_key(keyring, bytes(s.wrapped_key), s.annotator)
        content, salt = open_record(keys[s.annotator], bytes(s.nonce), bytes(s.ciphertext),
                                    record_aad(row.dataset, row.version, s.position))
        try:
            Opening(salt, canonicalize(content)).verify(Commitment(bytes(s.commitment)))
        except VerificationError as e:
            raise RecordsUnreadable(f"record {s.position} of {row.dataset} version {row.version} does not "
                                    "open its commitment") from e
        out.append(PreferenceRecord(s.position, content["prompt"], content["chosen"], content["rejected"],
                                    content["annotator"], content["labels"]))
    return out


async def reject_version(db: Database, dataset: str, version: int) -> None:
    """Flag a version so that :func:`load_version` refuses it (idempotent)."""
    row = await version_row(db, dataset, version)
    async with db.transaction("rejecting a dataset version") as conn:
        await conn.execute(sa.update(dataset_versions).where(dataset_versions.c.id == row.id)
                           .values(rejected=True))


async def reject_annotator(db: Database, pseudonym: str) -> None:
    """Leave this annotator's records out of every future load (idempotent).

    UnknownSubject when no dataset record carries the pseudonym (a typo would otherwise pass)."""
    check_pseudonym(pseudonym)
    async with db.connect("finding an annotator") as conn:
        known = (await conn.execute(sa.select(dataset_records.c.position).where(
            dataset_records.c.annotator == pseudonym).limit(1))).first()
    if known is None and not await is_rejected(db, annotator=pseudonym):
        raise UnknownSubject(f"no dataset record has the annotator {pseudonym}")
    try:
        async with db.transaction("rejecting an annotator") as conn:
            await conn.execute(sa.insert(rejected_annotators).values(pseudonym=pseudonym, rejected_at=now()))
    except IntegrityError:
        pass  # rejected already


async def is_rejected(db: Database, dataset: str | None = None, version: int | None = None, *,
                      annotator: str | None = None) -> bool:
    """Whether the version (``dataset`` and ``version``) or the ``annotator`` was rejected."""
    if annotator is not None:
        async with db.connect("reading rejections") as conn:
            return (await conn.execute(sa.select(rejected_annotators.c.pseudonym).where(
                rejected_annotators.c.pseudonym == annotator))).first() is not None
    if dataset is None or version is None:
        raise TypeError("is_rejected needs dataset and version, or annotator")
    return bool((await version_row(db, dataset, version)).rejected)


def _version_summary(row: Any) -> dict[str, Any]:
    return {"version": row.version, "records": row.records, "annotators": row.annotators,
            "root": base64.b64encode(row.root).decode(), "source_sha256": row.source_sha256,
            "rejected": bool(row.rejected), "leaf_index": row.version_leaf,
            "first_record": row.first_leaf, "last_record": row.last_leaf,
            "datasheet_leaf_index": row.datasheet_leaf,
            "imported_at": row.created_at.isoformat() if row.created_at else None}


def _budget(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"epsilon_total": row.epsilon_total, "delta": row.delta, "spent": row.spent,
            "reserved": row.reserved, "remaining": max(0.0, row.epsilon_total - row.spent - row.reserved)}


async def list_datasets(db: Database) -> list[dict[str, Any]]:
    """Every dataset with its latest version and budget."""
    async with db.connect("listing datasets") as conn:
        rows = (await conn.execute(sa.select(dataset_versions).where(_complete)
                                   .order_by(dataset_versions.c.dataset, dataset_versions.c.version))).all()
        budgets = {b.dataset: b for b in await conn.execute(sa.select(dataset_budgets))}
    latest: dict[str, Any] = {}
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        latest[row.dataset] = row
        counts[row.dataset] += 1
    return [{"dataset": name, "versions": counts[name], "latest": _version_summary(row),
             "budget": _budget(budgets.get(name))} for name, row in latest.items()]


async def describe_dataset(db: Database, dataset: str) -> dict[str, Any]:
    """Versions (with datasheets), annotator pseudonym statistics and the budget of one dataset."""
    name = dataset_id(dataset)
    v, r = dataset_versions.c, dataset_records.c
    async with db.connect("reading a dataset") as conn:
        rows = (await conn.execute(sa.select(dataset_versions).where(v.dataset == name, _complete)
                                   .order_by(v.version))).all()
        if not rows:
            raise UnknownDataset(f"no dataset {name}")
        stats = (await conn.execute(
            sa.select(r.annotator, v.version, sa.func.count())
            .select_from(dataset_records.join(dataset_versions, v.id == r.version_id))
            .where(v.dataset == name, _complete).group_by(r.annotator, v.version))).all()
        budget = (await conn.execute(sa.select(dataset_budgets)
                                     .where(dataset_budgets.c.dataset == name))).first()
        rejected = set((await conn.execute(sa.select(rejected_annotators.c.pseudonym))).scalars())
    annotators: dict[str, dict[str, Any]] = {}
    erased = 0
    for pseudonym, version, count in stats:
        if pseudonym is None:
            erased += count
            continue
        a = annotators.setdefault(pseudonym, {"annotator": pseudonym, "records": 0, "versions": [],
                                              "rejected": pseudonym in rejected})
        a["records"] += count
        a["versions"].append(version)
    versions = [{**_version_summary(row), "datasheet": orjson.loads(row.datasheet) if row.datasheet else None}
                for row in rows]
    return {"dataset": name, "versions": versions,
            "annotators": sorted(annotators.values(), key=lambda a: (-a["records"], a["annotator"])),
            "erased_records": erased, "budget": _budget(budget)}
