"""Annotator pseudonyms and records encrypted at rest, designed so that erasure is possible.

The log is append-only and public to auditors, so a person's data must never be on it, and
must be deletable off it (GDPR Art. 17) without breaking a single proof. Per data subject
(annotator) the ``data_subjects`` table holds one row:

- ``lookup``: a keyed MAC of the identity (under the keyring's pseudonym key), to find the row
  again at the next import of the same annotator;
- ``salt``: 32 random bytes; the pseudonym is ``pseud:`` + HMAC(pseudonym key, salt || identity)
  truncated to 32 hex (through :class:`ledger.events.Pseudonymizer`, which adds its domain);
- ``wrapped_key``: the subject's own random AES-256 record key, wrapped with AES-256-GCM under
  the keyring's ``records_kek`` (the KEK stays in a file outside the database).

Each record row holds AES-256-GCM nonce + ciphertext of the record's canonical JSON (prompt,
chosen, rejected, labels, the annotator's pseudonym, and the salt of its commitment), with AAD
binding it to dataset, version and position so rows cannot be swapped. The log carries only the
salted commitment of the record and the pseudonym.

Erasure deletes the subject row (salt, wrapped key, lookup) and the record ciphertexts. After
that nobody, not even an operator holding both keys, can recompute the pseudonym from the
identity (the salt is gone, so the MAC input is unknown), open the commitments (their salts were
only inside the ciphertexts), or decrypt a leftover copy of a ciphertext (the key is gone): the
log's entries and every proof over them stay valid, but nothing links them to the person. An
annotator imported again after erasure is a new data subject with a new pseudonym.
Databases keep deleted bytes for a while (PostgreSQL's dead tuples until VACUUM, SQLite's free
pages and WAL until VACUUM or checkpoint): vacuum after erasures where disk images and backups
matter, and expire backups on the same schedule.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.database import Database
from app.core.keyring import Keyring
from ledger.canonical import canonicalize

from .errors import DatasetError, RecordsUnreadable
from .schema import data_subjects

__all__ = [
    "PSEUDONYM",
    "Subject",
    "check_pseudonym",
    "dataset_id",
    "find_subject",
    "now",
    "open_record",
    "record_aad",
    "seal_record",
    "subjects_for",
    "unwrap_key",
    "unwrap_with",
    "wrap_key",
]

PSEUDONYM = re.compile(r"pseud:[0-9a-f]{32}")
_SLUG = re.compile(r"[a-z0-9][a-z0-9_.-]{0,60}")
_KEY_AAD = b"rlhf-audit-trail/subject-key/v1\x00"
_RECORD_AAD = b"rlhf-audit-trail/record/v1\x00"


def now() -> datetime:
    return datetime.now(UTC)


def dataset_id(name: str) -> str:
    """``ds_<slug>`` for ``name`` (given with or without the ``ds_`` prefix)."""
    slug = name[3:] if name.startswith("ds_") else name
    if not _SLUG.fullmatch(slug):
        raise DatasetError(f"dataset name {name!r} must be 1-61 of a-z 0-9 _ . - (lowercase, starting "
                           "with a letter or digit), optionally prefixed ds_")
    return "ds_" + slug


def check_pseudonym(pseudonym: str) -> str:
    if not PSEUDONYM.fullmatch(pseudonym):
        raise DatasetError(f"{pseudonym!r} is not a pseudonym (pseud: and 32 lowercase hex digits)")
    return pseudonym


# -- data subjects -----------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    id: int
    pseudonym: str
    key: bytes  # the subject's AES-256 record key, unwrapped (memory only)


def _lookup(keyring: Keyring, identity: str) -> bytes:
    return bytes.fromhex(keyring.pseudonymizer.pseudonym("data-subject/lookup\x00" + identity)[6:])


def _pseudonym(keyring: Keyring, salt: bytes, identity: str) -> str:
    return keyring.pseudonymizer.pseudonym("data-subject\x00" + salt.hex() + "\x00" + identity)


def wrap_key(kek: bytes, key: bytes, pseudonym: str) -> bytes:
    """``key`` wrapped under ``kek`` for the subject ``pseudonym``: nonce + AES-GCM ciphertext."""
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(kek).encrypt(nonce, key, _KEY_AAD + pseudonym.encode())


_wrap = wrap_key


def unwrap_with(kek: bytes, wrapped: bytes, pseudonym: str) -> bytes | None:
    """The record key ``wrapped`` holds if it opens under ``kek``, else None."""
    try:
        return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], _KEY_AAD + pseudonym.encode())
    except (InvalidTag, ValueError):
        return None


def unwrap_key(keyring: Keyring, wrapped: bytes, pseudonym: str) -> bytes:
    key = unwrap_with(keyring.records_kek, wrapped, pseudonym)
    if key is None:
        raise RecordsUnreadable(f"the record key of {pseudonym} does not open with this keyring's "
                           "records key (wrong keys directory, or a tampered row)")
    return key


def _insert(conn: AsyncConnection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


async def subjects_for(conn: AsyncConnection, keyring: Keyring,
                       identities: Iterable[str]) -> dict[str, Subject]:
    """Find or create the subject of each identity, inside the caller's transaction."""
    wanted = {_lookup(keyring, i): i for i in sorted(set(identities))}
    fresh = []
    for lookup, identity in wanted.items():
        salt = secrets.token_bytes(32)
        pseudonym = _pseudonym(keyring, salt, identity)
        fresh.append({"lookup": lookup, "pseudonym": pseudonym, "salt": salt, "created_at": now(),
                      "wrapped_key": _wrap(keyring.records_kek, AESGCM.generate_key(256), pseudonym)})
    if fresh:
        await conn.execute(_insert(conn)(data_subjects).on_conflict_do_nothing(
            index_elements=["lookup"]), fresh)
    out: dict[str, Subject] = {}
    lookups = list(wanted)
    for k in range(0, len(lookups), 500):
        rows = await conn.execute(sa.select(data_subjects).where(
            data_subjects.c.lookup.in_(lookups[k:k + 500])))
        for row in rows:
            identity = wanted[bytes(row.lookup)]
            if _pseudonym(keyring, bytes(row.salt), identity) != row.pseudonym:
                raise RecordsUnreadable("a data subject's pseudonym does not match its salt: "
                                   "is this the home's pseudonym key?")
            key = unwrap_key(keyring, bytes(row.wrapped_key), row.pseudonym)
            out[identity] = Subject(row.id, row.pseudonym, key)
    return out


async def find_subject(db: Database, keyring: Keyring, identity: str) -> str | None:
    """The pseudonym of ``identity`` if it is a data subject here (None: never seen, or erased)."""
    async with db.connect("finding a data subject") as conn:
        row = (await conn.execute(sa.select(data_subjects.c.pseudonym, data_subjects.c.salt).where(
            data_subjects.c.lookup == _lookup(keyring, identity)))).first()
    if row is None:
        return None
    pseudonym: str = row.pseudonym
    return pseudonym if _pseudonym(keyring, bytes(row.salt), identity) == pseudonym else None


# -- records -----------------------------------------------------------------------------


def record_aad(dataset: str, version: int, position: int) -> bytes:
    return _RECORD_AAD + f"{dataset}\x00{version}\x00{position}".encode()


def seal_record(key: bytes, content: dict[str, Any], salt: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext) of the canonical JSON of the record and its commitment salt."""
    nonce = secrets.token_bytes(12)
    plain = canonicalize({"record": content, "salt": base64.b64encode(salt).decode()})
    return nonce, AESGCM(key).encrypt(nonce, plain, aad)


def open_record(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> tuple[dict[str, Any], bytes]:
    """The record's content and its commitment salt."""
    try:
        plain = AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag as e:
        raise RecordsUnreadable("a record does not decrypt: tampered, moved, or the wrong key") from e
    doc = orjson.loads(plain)
    return doc["record"], base64.b64decode(doc["salt"])
