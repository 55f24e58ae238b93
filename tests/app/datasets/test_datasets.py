"""Importing human-feedback datasets: commitments and roots on the log, encrypted records off it,
pseudonyms, datasheets, re-imports, malformed files, loading for training, rejections.

On SQLite and PostgreSQL (the ``log`` fixture).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses

import orjson
import pytest
import sqlalchemy as sa

from app.core.database import Database
from app.core.keyring import Keyring
from app.datasets import (
    DatasetError,
    DatasetRejected,
    PreferenceRecord,
    UnknownDataset,
    UnknownSubject,
    find_subject,
    import_dataset,
    is_rejected,
    load_version,
    reject_annotator,
    reject_version,
)
from app.datasets.errors import RecordsUnreadable
from app.datasets.schema import data_subjects, dataset_records, dataset_versions
from ledger.events import Commitment
from ledger.log import Log
from ledger.merkle import leaf_hash, root_of
from tests.support.datasets_data import ANNOTATORS, jsonl, rows
from tests.support.log_reading import db_text, events


async def test_import_logs_commitments_root_and_datasheet(db: Database, log: Log, keyring: Keyring) -> None:
    data = rows(12)
    for i, r in enumerate(data):  # free text in a label is content: it must not reach the log
        r["labels"]["comment"] = f"My private remark number {i}"
    result = await import_dataset(db, log, keyring, "helpful", jsonl(data),
                                  datasheet={"origin": "vendor X", "collection_process": "web form",
                                             "purpose": "reward model", "known_gaps": ["only English"]})
    assert result.created and result.dataset == "ds_helpful" and result.version == 1
    assert result.records == 12 and result.annotators == 3
    logged = await events(log)
    records = [e for e in logged if e["kind"] == "dataset.record"]
    assert [e["i"] for e in records] == list(range(12))
    assert {(e["dataset"], e["dataset_version"]) for e in records} == {("ds_helpful", 1)}
    [version] = [e for e in logged if e["kind"] == "dataset.version"]
    digests = [Commitment.parse(e["commitment"]).digest for e in records]
    root = base64.b64encode(root_of([leaf_hash(d) for d in digests])).decode()
    assert version["root"] == root == result.root
    assert version["records"] == 12 and version["annotators"] == 3
    assert version["source_sha256"].startswith("sha256:") and version["source_sha256"] == result.source_sha256
    indices = [i for i, e in enumerate(logged) if e["kind"] == "dataset.record"]
    assert (version["first_record"], version["last_record"]) == (indices[0], indices[-1])
    assert logged.index(version) == result.leaf_index
    [sheet_event] = [e for e in logged if e["kind"] == "dataset.datasheet"]
    sheet = sheet_event["datasheet"]
    assert sheet["origin"] == "vendor X" and sheet["guideline_version"] == "v2"
    assert sheet["annotator_count"] == 3 and sheet["records"] == 12
    # 4 items, each judged by all 3 annotators: 12 pairs; carol flips prompt 1, so 2 of its 3 disagree
    agreement = sheet["agreement"]
    assert agreement["status"] == "measured"
    assert (agreement["items_compared"], agreement["pairs"], agreement["agreeing_pairs"]) == (4, 12, 10)
    assert agreement["rate"] == pytest.approx(10 / 12, abs=1e-4)
    assert sheet["label_distribution"]["topic"] == {"coffee": 6, "tea": 6}
    assert sheet["label_distribution"]["comment"] == {"distinct_values": 12, "records": 12}
    assert sheet["known_gaps"] == ["only English"]
    # pseudonyms, one per annotator, and nothing personal or any content on the log or in the DB
    assert len({e["annotator"] for e in records}) == 3
    assert all(e["annotator"].startswith("pseud:") and len(e["annotator"]) == 38 for e in records)
    blob = b"\n".join([orjson.dumps(e) for e in logged])
    stored = await db_text(log)
    for secret in [*ANNOTATORS, "Prompt number", "helpful answer", "rude answer", "private remark"]:
        assert secret.encode() not in blob, secret
        assert secret.encode() not in stored, secret


async def test_load_version_returns_exactly_the_records(db: Database, log: Log, keyring: Keyring) -> None:
    data = rows(9)
    result = await import_dataset(db, log, keyring, "ds_pairs", jsonl(data))
    loaded = await load_version(db, log, keyring, "pairs")
    assert (loaded.dataset, loaded.version, loaded.root, loaded.excluded) == ("ds_pairs", 1, result.root, 0)
    assert [f.name for f in dataclasses.fields(PreferenceRecord)] == [
        "position", "prompt", "chosen", "rejected", "annotator", "labels"]
    logged = [e for e in await events(log) if e["kind"] == "dataset.record"]
    for record, raw, event in zip(loaded.records, data, logged, strict=True):
        assert (record.prompt, record.chosen, record.rejected, record.labels) == (
            raw["prompt"], raw["chosen"], raw["rejected"], raw["labels"])
        assert record.annotator == event["annotator"] and record.position == event["i"]
    assert await find_subject(db, keyring, ANNOTATORS[0]) == loaded.records[0].annotator
    assert await find_subject(db, keyring, "nobody@example.org") is None
    # the same annotator keeps its pseudonym in another dataset
    await import_dataset(db, log, keyring, "other", jsonl(rows(3, guideline="v3")))
    other = await load_version(db, log, keyring, "other")
    assert other.records[0].annotator == loaded.records[0].annotator
    with pytest.raises(UnknownDataset):
        await load_version(db, log, keyring, "pairs", 2)
    with pytest.raises(UnknownDataset):
        await load_version(db, log, keyring, "nothing")


async def test_reimport_is_recognised_and_new_files_make_versions(db: Database, log: Log,
                                                                  keyring: Keyring) -> None:
    first = await import_dataset(db, log, keyring, "h", jsonl(rows(5)))
    size = await log.sequenced_size()
    again = await import_dataset(db, log, keyring, "h", jsonl(rows(5)))
    assert not again.created and (again.version, again.root, again.leaf_index) == (
        first.version, first.root, first.leaf_index)
    assert await log.sequenced_size() == size  # nothing logged twice
    second = await import_dataset(db, log, keyring, "h", jsonl(rows(6)))
    assert second.created and second.version == 2
    latest = await load_version(db, log, keyring, "h")
    assert latest.version == 2 and len(latest.records) == 6
    assert len((await load_version(db, log, keyring, "h", 1)).records) == 5


async def test_concurrent_imports_get_distinct_versions(db: Database, log: Log, keyring: Keyring) -> None:
    results = await asyncio.gather(*(import_dataset(db, log, keyring, "race", jsonl(rows(n)))
                                     for n in (3, 4, 5)))
    assert sorted(r.version for r in results) == [1, 2, 3]
    for r in results:
        assert len((await load_version(db, log, keyring, "race", r.version)).records) == r.records


MALFORMED = [
    # three good lines come first: the bad one is line 4 (5 after a blank line)
    (b'{"prompt": "p", "chosen": "a", "rejected": "b", "annotator": "x"}\n{not json\n', "line 5"),
    (b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n', "line 4: 'annotator' is missing"),
    (b'\n{"prompt": "p", "chosen": "a", "rejected": "a", "annotator": "x"}\n',
     "line 5: 'chosen' and 'rejected'"),
    (b'{"prompt": 5, "chosen": "a", "rejected": "b", "annotator": "x"}\n', "line 4: 'prompt' must be"),
    (b'{"prompt": "p", "chosen": "a", "rejected": "b", "annotator": "x", "labels": [1]}\n',
     "line 4: 'labels'"),
    (b'{"prompt": "p", "chosen": "a", "rejected": "b", "annotator": "x", "score": 1}\n',
     "line 4: unknown field"),
    (b'{"prompt": "p", "chosen": "a", "rejected": "b", "annotator": "x", "created_at": "yesterday"}\n',
     "line 4: 'created_at'"),
    (b'[1, 2]\n', "line 4"),
    (b'{"prompt": "p", "prompt": "q", "chosen": "a", "rejected": "b", "annotator": "x"}\n', "line 4"),
    (b"\n\n", "no records"),
]


async def test_malformed_files_are_refused_whole(db: Database, log: Log, keyring: Keyring) -> None:
    for data, message in MALFORMED:
        with pytest.raises(DatasetError, match=message) as raised:
            await import_dataset(db, log, keyring, "bad", jsonl(rows(3)) + data if data.strip() else data)
        assert "nothing was imported" in str(raised.value)
    assert await log.sequenced_size() == 0
    async with db.engine.connect() as conn:
        for table in (dataset_versions, data_subjects, dataset_records):
            assert (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar() == 0


async def test_bad_datasheets_and_names(db: Database, log: Log, keyring: Keyring) -> None:
    data = jsonl(rows(3))
    with pytest.raises(DatasetError, match="lacks collection_process, purpose"):
        await import_dataset(db, log, keyring, "d", data, datasheet={"origin": "x"})
    with pytest.raises(DatasetError, match="computed from the data"):
        await import_dataset(db, log, keyring, "d", data, datasheet={
            "origin": "x", "collection_process": "y", "purpose": "z", "annotator_count": 99})
    with pytest.raises(DatasetError, match="JSON object"):
        await import_dataset(db, log, keyring, "d", data, datasheet=["origin"])  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match="dataset name"):
        await import_dataset(db, log, keyring, "Bad Name!", data)
    assert await log.sequenced_size() == 0


async def test_datasheet_without_overlap_or_file_states_the_gaps(db: Database, log: Log,
                                                                 keyring: Keyring) -> None:
    await import_dataset(db, log, keyring, "solo", jsonl(rows(4, overlap=False)))
    [sheet] = [e["datasheet"] for e in await events(log) if e["kind"] == "dataset.datasheet"]
    assert sheet["agreement"]["status"] == "not measurable"
    assert sheet["origin"] == sheet["purpose"] == "not stated"
    assert any("no datasheet" in g for g in sheet["known_gaps"])
    assert any("agreement" in g for g in sheet["known_gaps"])


async def test_rejections(db: Database, log: Log, keyring: Keyring) -> None:
    await import_dataset(db, log, keyring, "r", jsonl(rows(6)))
    loaded = await load_version(db, log, keyring, "r")
    carol = next(rec.annotator for rec in loaded.records if rec.position == 2)
    await reject_annotator(db, carol)
    await reject_annotator(db, carol)  # idempotent
    assert await is_rejected(db, annotator=carol)
    trimmed = await load_version(db, log, keyring, "r")
    assert trimmed.excluded == 2 and len(trimmed.records) == 4
    assert carol not in {rec.annotator for rec in trimmed.records}
    assert len((await load_version(db, log, keyring, "r", exclude_rejected=False)).records) == 6
    assert not await is_rejected(db, "r", 1)
    await reject_version(db, "r", 1)
    assert await is_rejected(db, "ds_r", 1)
    with pytest.raises(DatasetRejected, match="rejected"):
        await load_version(db, log, keyring, "r", 1)
    with pytest.raises(UnknownSubject):
        await reject_annotator(db, "pseud:" + "0" * 32)
    with pytest.raises(DatasetError, match="not a pseudonym"):
        await reject_annotator(db, "alice@example.org")
    with pytest.raises(UnknownDataset):
        await reject_version(db, "r", 7)


async def test_tampered_records_are_detected(db: Database, log: Log, keyring: Keyring) -> None:
    await import_dataset(db, log, keyring, "t", jsonl(rows(4)))
    r = dataset_records.c
    async with db.engine.begin() as conn:
        first, second = (await conn.execute(sa.select(r.position, r.nonce, r.ciphertext)
                                            .order_by(r.position).limit(2))).all()
        # swap two records' ciphertexts: AAD binds each to its position
        await conn.execute(sa.update(dataset_records).where(r.position == 0).values(
            nonce=second.nonce, ciphertext=second.ciphertext))
    with pytest.raises(RecordsUnreadable):
        await load_version(db, log, keyring, "t")
    with pytest.raises(RecordsUnreadable, match="records key"):
        await load_version(db, log, Keyring(keyring.directory.parent / "other-keys"), "t")
