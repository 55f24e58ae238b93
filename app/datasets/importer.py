"""Importing preference data (JSON Lines) as a new dataset version, recorded on the log.

One line per record: ``{"prompt", "chosen", "rejected", "annotator", "labels"?, "created_at"?}``.
The whole file is checked before anything is stored or logged: one bad line refuses the file,
naming the line. A file imported before into the same dataset (same SHA-256) is recognised and
answered with the version it became.

Order of work, so that a failure leaves nothing misleading: a ``pending`` version row (which
allocates the version number) and the data subjects; the ``dataset.record`` events, in batches;
the encrypted record rows with their events' leaf indices; then ``dataset.version`` and
``dataset.datasheet`` together, the version's commit point on the log; finally the row becomes
``complete``. A version that failed midway is marked ``failed`` and its rows are deleted.

With an object store, the version's encrypted records are also archived there just before the
commit point (:func:`archive_records`; ``dataset.version`` carries the archive's key and SHA-256).
The database stays the working copy. The archive holds only ciphertexts under each subject's
record key, whose wrapped form lives in the database: erasing a subject (crypto-shredding) deletes
that key, so the subject's records in a write-once archive become unreadable too.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.core.database import Database
from app.core.keyring import Keyring
from app.events.recording import SYSTEM, Actor, event
from app.objects import ObjectStore
from ledger.canonical import canonicalize, decode_event, encode_event
from ledger.errors import EntryError
from ledger.events import commit
from ledger.log import Log
from ledger.merkle import leaf_hash, root_of

from .datasheet import build_datasheet, check_datasheet
from .errors import DatasetError
from .records import Subject, dataset_id, now, record_aad, seal_record, subjects_for
from .schema import dataset_records, dataset_versions

__all__ = ["APPEND_BATCH", "ARCHIVE_FORMAT", "ImportResult", "RawRecord", "archive_records", "import_dataset",
           "parse_records"]

APPEND_BATCH = 1000  # dataset.record events per log.append call
ARCHIVE_FORMAT = "rlhf-audit-trail/dataset-records@1"
_FIELDS = ("prompt", "chosen", "rejected", "annotator", "labels", "created_at")
_log = logging.getLogger("app.datasets")


@dataclass(frozen=True)
class RawRecord:
    """One checked line of an import file (in memory only: ``identity`` is personal data)."""

    line: int
    identity: str
    prompt: str
    chosen: str
    rejected: str
    labels: dict[str, Any]
    created_at: str | None


@dataclass(frozen=True)
class ImportResult:
    dataset: str
    version: int
    records: int
    annotators: int
    root: str  # base64
    source_sha256: str
    leaf_index: int  # of the dataset.version event
    created: bool  # False: this file had been imported already


def _record(number: int, doc: dict[str, Any]) -> RawRecord:
    unknown = sorted(set(doc) - set(_FIELDS))
    if unknown:
        raise DatasetError(f"unknown field(s) {', '.join(unknown)}; a record has {', '.join(_FIELDS)}")
    for field in ("prompt", "chosen", "rejected", "annotator"):
        if field not in doc:
            raise DatasetError(f"{field!r} is missing")
        if not isinstance(doc[field], str) or not doc[field].strip():
            raise DatasetError(f"{field!r} must be non-empty text")
    if doc["chosen"] == doc["rejected"]:
        raise DatasetError("'chosen' and 'rejected' are the same text")
    labels = doc.get("labels", {})
    if not isinstance(labels, dict):
        raise DatasetError("'labels' must be a JSON object")
    created_at = doc.get("created_at")
    if created_at is not None:
        try:
            if not isinstance(created_at, str):
                raise ValueError
            datetime.fromisoformat(created_at)
        except ValueError:
            raise DatasetError("'created_at' must be an RFC 3339 time, e.g. 2026-11-25T10:31:00Z") from None
    return RawRecord(number, doc["annotator"].strip(), doc["prompt"], doc["chosen"], doc["rejected"],
                     labels, created_at)


def parse_records(data: bytes) -> list[RawRecord]:
    """Every record of a JSON Lines file, or a DatasetError naming the first bad line."""
    records = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(_record(number, decode_event(line)))
        except (EntryError, DatasetError) as e:  # the line is not JSON, or not a record
            raise DatasetError(f"line {number}: {e} (nothing was imported)") from None
    if not records:
        raise DatasetError("the file holds no records (nothing was imported)")
    return records


def _result(row: Any, created: bool) -> ImportResult:
    return ImportResult(row.dataset, row.version, row.records, row.annotators,
                        base64.b64encode(row.root).decode(), row.source_sha256, row.version_leaf, created)


async def _existing(db: Database, name: str, source: str) -> Any:
    async with db.transaction("reading dataset versions") as conn:
        return (await conn.execute(sa.select(dataset_versions).where(
            dataset_versions.c.dataset == name, dataset_versions.c.source_sha256 == source))).first()


async def _begin(db: Database, keyring: Keyring, name: str, source: str,
                 identities: set[str]) -> tuple[int, int, dict[str, Subject]] | Any:
    """A pending version row and the subjects; or the existing row of the same file."""
    v = dataset_versions.c
    next_version = sa.select(
        sa.literal(name), sa.func.coalesce(sa.func.max(v.version), 0) + 1, sa.literal("pending"),
        sa.literal(source), sa.literal(now(), sa.DateTime(timezone=True)),
    ).where(v.dataset == name)
    for _ in range(10):
        try:
            async with db.transaction("starting an import") as conn:
                await conn.execute(sa.insert(dataset_versions).from_select(
                    ["dataset", "version", "state", "source_sha256", "created_at"], next_version))
                row = (await conn.execute(sa.select(v.id, v.version).where(
                    v.dataset == name, v.source_sha256 == source))).one()
                return row.id, row.version, await subjects_for(conn, keyring, identities)
        except IntegrityError:
            existing = await _existing(db, name, source)
            if existing is None:
                continue  # another import took the version number: take the next
            if existing.state != "complete":
                raise DatasetError(f"this file is being imported into {name} right now") from None
            return existing
    raise DatasetError(f"too many imports into {name} at once; try again")


async def _fail(db: Database, version_id: int) -> None:
    try:
        async with db.transaction("abandoning an import") as conn:
            await conn.execute(sa.delete(dataset_records).where(dataset_records.c.version_id == version_id))
            await conn.execute(sa.update(dataset_versions).where(dataset_versions.c.id == version_id).values(
                state="failed", source_sha256=None))
    except Exception:  # the original error matters more
        _log.exception("could not mark dataset version row %s failed", version_id)


async def import_dataset(
    db: Database, log: Log, keyring: Keyring, dataset: str, data: bytes, *,
    datasheet: Mapping[str, Any] | None = None, actor: Actor = SYSTEM, objects: ObjectStore | None = None,
) -> ImportResult:
    """Import a JSON Lines file as the next version of ``dataset`` (see the module docstring)."""
    name = dataset_id(dataset)
    source = "sha256:" + hashlib.sha256(data).hexdigest()
    existing = await _existing(db, name, source)
    if existing is not None and existing.state == "complete":
        return _result(existing, created=False)
    records = await asyncio.to_thread(parse_records, data)  # CPU-bound for big files: off the loop
    given = None if datasheet is None else check_datasheet(datasheet)
    sheet = await asyncio.to_thread(build_datasheet, records, given)
    try:
        encode_event(event("dataset.datasheet", actor, dataset=name, dataset_version=1, datasheet=sheet))
    except EntryError as e:
        raise DatasetError(f"the datasheet is too large for the log: {e} (nothing was imported)") from None
    begun = await _begin(db, keyring, name, source, {r.identity for r in records})
    if not isinstance(begun, tuple):
        return _result(begun, created=False)
    version_id, version, subjects = begun
    try:
        return await _complete(db, log, name, version_id, version, source, records, subjects, sheet, actor,
                               objects)
    except BaseException:
        await _fail(db, version_id)
        raise


def _seal(name: str, version_id: int, version: int, records: Sequence[RawRecord],
          subjects: dict[str, Subject], actor: Actor) -> tuple[list[dict[str, Any]], list[Any], list[bytes]]:
    """Commit to and encrypt every record: the rows, the dataset.record events, the digests."""
    rows: list[dict[str, Any]] = []
    events = []
    digests = []
    for i, r in enumerate(records):
        subject = subjects[r.identity]
        content: dict[str, Any] = {"prompt": r.prompt, "chosen": r.chosen, "rejected": r.rejected,
                                   "labels": r.labels, "annotator": subject.pseudonym}
        if r.created_at is not None:
            content["created_at"] = r.created_at
        commitment, opening = commit(canonicalize(content))
        nonce, ciphertext = seal_record(subject.key, content, opening.salt, record_aad(name, version, i))
        digests.append(commitment.digest)
        rows.append({"version_id": version_id, "position": i, "subject_id": subject.id,
                     "annotator": subject.pseudonym, "commitment": commitment.digest,
                     "nonce": nonce, "ciphertext": ciphertext})
        events.append(event("dataset.record", actor, dataset=name, dataset_version=version, i=i,
                            commitment=str(commitment), annotator=subject.pseudonym))
    return rows, events, digests


def archive_records(objects: ObjectStore, name: str, version: int, rows: Sequence[Mapping[str, Any]]) -> Any:
    """Store the version's sealed records as JSON Lines (a header line, then one line per record:
    position, annotator pseudonym, commitment, nonce, ciphertext; bytes in base64) at
    ``datasets/<dataset>/v<version>/records.jsonl``. Each ciphertext's AAD binds it to dataset,
    version and position (:func:`app.datasets.records.record_aad`), so lines cannot be moved."""
    def b64(v: bytes) -> str:
        return base64.b64encode(v).decode()

    lines = [orjson.dumps({"format": ARCHIVE_FORMAT, "dataset": name, "dataset_version": version,
                           "records": len(rows)})]
    lines += [orjson.dumps({"position": r["position"], "annotator": r["annotator"],
                            "commitment": b64(r["commitment"]), "nonce": b64(r["nonce"]),
                            "ciphertext": b64(r["ciphertext"])}) for r in rows]
    return objects.put_bytes(f"datasets/{name}/v{version}/records.jsonl", b"\n".join(lines) + b"\n")


async def _complete(db: Database, log: Log, name: str, version_id: int, version: int, source: str,
                    records: Sequence[RawRecord], subjects: dict[str, Subject], sheet: dict[str, Any],
                    actor: Actor, objects: ObjectStore | None) -> ImportResult:
    rows, events, digests = await asyncio.to_thread(_seal, name, version_id, version, records, subjects,
                                                    actor)
    leaves = []
    for k in range(0, len(events), APPEND_BATCH):
        leaves += await log.append(events[k:k + APPEND_BATCH])
    for row, leaf in zip(rows, leaves, strict=True):
        row["leaf_index"] = leaf.leaf_index
    async with db.transaction("storing the records") as conn:
        for k in range(0, len(rows), APPEND_BATCH):
            await conn.execute(sa.insert(dataset_records), rows[k:k + APPEND_BATCH])
    root = root_of([leaf_hash(d) for d in digests])
    annotators = len({r.identity for r in records})
    archived: dict[str, str] = {}
    if objects is not None:
        stored = await asyncio.to_thread(archive_records, objects, name, version, rows)
        archived = {"records_object": stored.key, "records_sha256": stored.sha256}
    version_event = event(
        "dataset.version", actor, dataset=name, dataset_version=version, records=len(records),
        annotators=annotators, root=base64.b64encode(root).decode(), source_sha256=source,
        first_record=leaves[0].leaf_index, last_record=leaves[-1].leaf_index, **archived)
    sheet_event = event("dataset.datasheet", actor, dataset=name, dataset_version=version, datasheet=sheet)
    version_leaf, sheet_leaf = await log.append([version_event, sheet_event])
    async with db.transaction("completing the import") as conn:
        await conn.execute(sa.update(dataset_versions).where(dataset_versions.c.id == version_id).values(
            state="complete", records=len(records), annotators=annotators, root=root,
            first_leaf=leaves[0].leaf_index, last_leaf=leaves[-1].leaf_index,
            version_leaf=version_leaf.leaf_index, datasheet_leaf=sheet_leaf.leaf_index,
            datasheet=orjson.dumps(sheet).decode()))
    return ImportResult(name, version, len(records), annotators, base64.b64encode(root).decode(), source,
                        version_leaf.leaf_index, created=True)
