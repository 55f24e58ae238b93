"""GDPR Art. 17 erasure of one data subject (annotator), by crypto-shredding.

Deletes the subject's row (salt, wrapped record key, lookup MAC) and the ciphertexts of all its
records, in one transaction, then records ``privacy.erased`` (pseudonym, how many records, the
legal basis, the request reference; who and when are in the envelope). The log is untouched:
its ``dataset.record`` entries keep their commitments and every proof and checkpoint stays valid,
but with the salts and the key gone nothing links those commitments or the pseudonym to the
person any more (see :mod:`app.datasets.records`). Training loads leave erased records out.

The database change comes first: if the log cannot take the event afterwards, the person's data
is still gone, and the error says the event is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from app.core.database import Database
from app.core.errors import AppError, Unavailable
from app.events.recording import Actor, record
from ledger.errors import LedgerError
from ledger.log import Log

from .errors import DatasetError, UnknownSubject
from .records import check_pseudonym, now
from .schema import data_subjects, dataset_records

__all__ = ["Erasure", "erase_subject"]


@dataclass(frozen=True)
class Erasure:
    annotator: str
    records: int  # record ciphertexts destroyed
    leaf_index: int  # of the privacy.erased event


async def erase_subject(db: Database, log: Log, pseudonym: str, *, legal_basis: str, actor: Actor,
                        request_ref: str | None = None) -> Erasure:
    """Erase the data subject ``pseudonym``; UnknownSubject if there is none (or it is gone)."""
    check_pseudonym(pseudonym)
    if not legal_basis or not legal_basis.strip():
        raise DatasetError("an erasure needs its legal basis (e.g. 'GDPR Art. 17(1)(b): consent withdrawn')")
    if len(legal_basis) > 1000 or (request_ref is not None and len(request_ref) > 200):
        raise DatasetError("the legal basis is at most 1000 characters, the request reference 200")
    s, r = data_subjects.c, dataset_records.c
    async with db.transaction("erasing a data subject") as conn:
        # write first: on SQLite this takes the write lock before anything is read
        subject = sa.select(s.id).where(s.pseudonym == pseudonym).scalar_subquery()
        shredded = await conn.execute(sa.update(dataset_records).where(r.subject_id == subject).values(
            subject_id=None, annotator=None, nonce=None, ciphertext=None, erased_at=now()))
        gone = await conn.execute(sa.delete(data_subjects).where(s.pseudonym == pseudonym))
        if gone.rowcount != 1:
            raise UnknownSubject(f"no data subject has the pseudonym {pseudonym} "
                                 "(unknown, or erased already)")
        count = shredded.rowcount
    try:
        entry = await record(log, "privacy.erased", actor, annotator=pseudonym, records=count,
                             legal_basis=legal_basis.strip(), request_ref=request_ref)
    except (LedgerError, AppError) as e:
        raise Unavailable(f"{pseudonym} was erased ({count} records), but the privacy.erased event "
                           f"could not be recorded: {e}; record it by hand") from e
    return Erasure(pseudonym, count, entry.leaf_index)
