"""GDPR erasure by crypto-shredding, proven three ways, on SQLite and PostgreSQL:

(a) every inclusion and consistency proof and every checkpoint still verifies afterwards;
(b) nothing links the logged commitments to the person any more: the records and the subject's
    salt and key are gone, the pseudonym cannot be recomputed from the identity, training loads
    leave the records out;
(c) the erasure is on the log: what (pseudonym, count), when, by whom, under which legal basis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from app.core.database import Database
from app.core.keyring import Keyring
from app.datasets import (
    DatasetError,
    UnknownSubject,
    erase_subject,
    find_subject,
    import_dataset,
    load_version,
)
from app.datasets.schema import data_subjects, dataset_records
from app.events.recording import Actor
from ledger._internal.local_tsa import LocalTSA
from ledger.audit import audit_log
from ledger.checkpoint import Checkpoint
from ledger.note import open_note
from ledger.tlog_proof import format_tlog_proof, verify_tlog_proof
from tests.support.datasets_data import ANNOTATORS, jsonl, rows
from tests.support.log_reading import db_text, events

ADMIN = Actor("pseud:" + "d" * 32, "admin")
ALICE = ANNOTATORS[0]


async def _proofs(log: Any, indices: list[int]) -> dict[int, bytes]:
    cp = await log.checkpoint()
    return {i: format_tlog_proof(i, await log.inclusion_proof(i, cp.size), cp.note) for i in indices}


async def test_erasure_keeps_proofs_unlinks_and_is_logged(db: Database, log: Any, tmp_path: Path,
                                                          local_tsa: LocalTSA) -> None:
    keyring = Keyring(tmp_path / "keys")
    await import_dataset(db, log, keyring, "one", jsonl(rows(12)))
    await import_dataset(db, log, keyring, "two", jsonl(rows(6, overlap=False)))
    alice = await find_subject(db, keyring, ALICE)
    assert alice is not None
    async with db.engine.connect() as conn:
        of_alice = sa.select(data_subjects).where(data_subjects.c.pseudonym == alice)
        subject = (await conn.execute(of_alice)).one()
    logged = await events(log)
    hers = [i for i, e in enumerate(logged) if e["kind"] == "dataset.record" and e["annotator"] == alice]
    assert len(hers) == 4 + 2
    before = await log.integrate()
    assert before is not None
    proofs_before = await _proofs(log, list(range(before.size)))

    done = await erase_subject(db, log, alice, legal_basis="GDPR Art. 17(1)(b): consent withdrawn",
                               actor=ADMIN, request_ref="DSR-2026-17")
    assert (done.annotator, done.records) == (alice, len(hers))
    after = await log.integrate()
    assert after is not None and after.size == before.size + 1
    await log.timestamp_pending(force=True)

    # (a) the log, its proofs and checkpoints are untouched and verify
    report = await audit_log(log, tsa_roots=[local_tsa.root_certificate],
                             required_tsas=[t.name for t in log.tsas])
    assert report.ok and report.problems == [], report.problems
    for i, proof in proofs_before.items():  # proofs issued before the erasure still verify
        verify_tlog_proof(proof, await log.entry(i), log.signer.verifier)
    for i, proof in (await _proofs(log, hers)).items():  # and new ones for the erased records too
        cp = verify_tlog_proof(proof, await log.entry(i), log.signer.verifier)
        assert cp.size == after.size
    first = Checkpoint.parse(before.note[: before.note.index(b"\n\n") + 1])
    second = Checkpoint.parse(after.note[: after.note.index(b"\n\n") + 1])
    open_note(before.note, [log.signer.verifier])
    open_note(after.note, [log.signer.verifier])
    (await log.consistency_proof(before.size, after.size)).verify(first.root_hash, second.root_hash)
    assert [orjson.loads(await log.entry(i)) for i in range(before.size)] == logged

    # (b) unlinkable: salt, key and ciphertexts gone; the identity no longer yields the pseudonym
    r = dataset_records.c
    async with db.engine.connect() as conn:
        assert (await conn.execute(of_alice)).first() is None
        shredded = (await conn.execute(sa.select(r.annotator, r.subject_id, r.nonce, r.ciphertext,
                                                 r.erased_at).where(r.leaf_index.in_(hers)))).all()
    assert len(shredded) == len(hers)
    assert all(row[:4] == (None, None, None, None) and row.erased_at is not None for row in shredded)
    stored = await db_text(log)
    for gone in (bytes(subject.salt), bytes(subject.wrapped_key), bytes(subject.lookup)):
        assert gone not in stored
    assert await find_subject(db, keyring, ALICE) is None
    assert keyring.pseudonymizer.pseudonym(ALICE) != alice  # the key alone does not give it back
    again = await import_dataset(db, log, keyring, "three", jsonl(rows(3)))
    reimported = await load_version(db, log, keyring, again.dataset)
    new_alice = await find_subject(db, keyring, ALICE)
    assert new_alice is not None and new_alice != alice  # a new data subject, not the old one
    assert new_alice in {rec.annotator for rec in reimported.records}
    for name, total in (("one", 12), ("two", 6)):
        for exclude in (True, False):
            loaded = await load_version(db, log, keyring, name, exclude_rejected=exclude)
            assert alice not in {rec.annotator for rec in loaded.records}
            assert loaded.excluded == (4 if name == "one" else 2)
            assert len(loaded.records) == total - loaded.excluded

    # (c) the erasure event
    erased = orjson.loads(await log.entry(done.leaf_index))
    assert erased["kind"] == "privacy.erased"
    assert (erased["annotator"], erased["records"]) == (alice, len(hers))
    assert erased["legal_basis"] == "GDPR Art. 17(1)(b): consent withdrawn"
    assert erased["request_ref"] == "DSR-2026-17"
    assert (erased["actor"], erased["role"]) == (ADMIN.pseudonym, "admin") and erased["at"].endswith("Z")
    assert ALICE.encode() not in await log.entry(done.leaf_index)


async def test_erasure_refusals(db: Database, log: Any, tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    await import_dataset(db, log, keyring, "one", jsonl(rows(3)))
    bob = await find_subject(db, keyring, ANNOTATORS[1])
    assert bob is not None
    size = await log.sequenced_size()
    with pytest.raises(UnknownSubject, match="no data subject"):
        await erase_subject(db, log, "pseud:" + "0" * 32, legal_basis="Art. 17", actor=ADMIN)
    with pytest.raises(DatasetError, match="not a pseudonym"):
        await erase_subject(db, log, ANNOTATORS[1], legal_basis="Art. 17", actor=ADMIN)
    with pytest.raises(DatasetError, match="legal basis"):
        await erase_subject(db, log, bob, legal_basis="  ", actor=ADMIN)
    assert await log.sequenced_size() == size  # nothing logged, nothing erased
    assert await find_subject(db, keyring, ANNOTATORS[1]) == bob
    await erase_subject(db, log, bob, legal_basis="Art. 17", actor=ADMIN)
    with pytest.raises(UnknownSubject, match="erased already"):
        await erase_subject(db, log, bob, legal_basis="Art. 17", actor=ADMIN)
