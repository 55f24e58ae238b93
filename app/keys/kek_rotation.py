"""Rotating the records key-encryption key (``<keys>/records.key``), crash-safe.

The KEK wraps every data subject's record key (``data_subjects.wrapped_key``), and the key the
TOTP secrets are stored under (``account_totp.secret``) and the CSRF secret are derived from it
(``app.auth.keys``). :func:`rotate_records_kek`:

1. stages a new random KEK as ``<keys>/records.key.next`` (0600, fsynced, and the directory too);
2. in ONE database transaction (other writers of both tables locked out) re-wraps every
   subject's record key and re-encrypts every TOTP secret (pending enrolments too) under the
   new KEK, checking that each opened under the old one;
3. records ``keys.records_kek_rotated`` on the log (counts and key ids, never key material);
4. renames the staged file over ``records.key``, keeping the old key as
   ``<keys>/retired/records-<key id>.key`` (0600) unless told to discard it;
5. sweeps once more: a row another process wrapped under the old key meanwhile is re-wrapped.

Erased subjects have no row and no key any more: nothing to re-wrap, they stay erased. CSRF
tokens HMAC'd with the old KEK stop verifying once the server restarts (sessions themselves are
not derived from it): forms must be reloaded, sign-ins redone.

A crash can leave ``records.key.next`` behind, before or after the commit. While it exists,
:attr:`app.core.keyring.Keyring.records_kek` refuses to answer (it cannot know which key the
database is under), and :func:`settle_records_kek`, run by the rotate command, every
``on_home`` command and the server's start, decides: it tries a stored row (a subject's
wrapped key, else a TOTP secret) under both keys. Under the staged key: the commit happened, so
it records the event if the log lacks it and installs the key (steps 3-4). Under the installed
key: the commit did not happen, so it deletes the staged file. With no row at all either key is
right: it installs the staged one. Under neither: it stops and says so.
A file lock (``<keys>/.records.lock``) keeps two rotations or recoveries from racing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.errors import LedgerError
from ledger.log import Log

from ..accounts.schema import account_totp
from ..auth.keys import totp_key_of
from ..auth.totp import open_secret, seal_secret
from ..core.database import Database
from ..core.errors import AppError, Unavailable
from ..core.keyring import Keyring, RecordsKekPending, records_kek_id
from ..datasets.errors import RecordsUnreadable
from ..datasets.records import unwrap_with, wrap_key
from ..datasets.schema import data_subjects
from ..events.recording import SYSTEM, Actor, record

__all__ = ["EVENT", "KekRotation", "Settled", "rotate_records_kek", "settle_records_kek"]

EVENT = "keys.records_kek_rotated"
_BATCH = 500
_EVENT_LOOKBACK = 1000  # entries searched for a rotation's event before recording it again


@dataclass(frozen=True)
class KekRotation:
    kek_id: str
    previous_kek_id: str
    subjects: int  # record keys re-wrapped
    totp_secrets: int  # TOTP secrets re-encrypted
    retired_file: str | None
    leaf_index: int


@dataclass(frozen=True)
class Settled:
    """What :func:`settle_records_kek` did with a staged key."""

    outcome: str  # "installed" (the database was under it) or "dropped" (it was not)
    kek_id: str
    retired_file: str | None = None


def _lock_tables(conn: Any) -> Any:
    if conn.dialect.name == "postgresql":  # writers wait; readers go on (they read either key's rows)
        return conn.execute(sa.text("LOCK TABLE data_subjects, account_totp IN SHARE ROW EXCLUSIVE MODE"))
    # SQLite: a write first takes the database's write lock before anything is read
    return conn.execute(sa.update(data_subjects).where(sa.false()).values(id=data_subjects.c.id))


async def _rewrap(conn: Any, old: bytes, new: bytes) -> tuple[int, int]:
    """Re-wrap every subject key and re-encrypt every TOTP secret from ``old`` to ``new`` inside
    the caller's transaction; rows already under ``new`` are left. Returns the counts changed."""
    await _lock_tables(conn)
    s = data_subjects.c
    rewrapped: list[dict[str, Any]] = []
    for row in await conn.execute(sa.select(s.id, s.pseudonym, s.wrapped_key).order_by(s.id)):
        wrapped = bytes(row.wrapped_key)
        if unwrap_with(new, wrapped, row.pseudonym) is not None:
            continue
        key = unwrap_with(old, wrapped, row.pseudonym)
        if key is None:
            raise RecordsUnreadable(f"the record key of {row.pseudonym} opens under neither the old nor the "
                               "new records key (a tampered row, or the wrong keys directory): nothing "
                               "was changed")
        rewrapped.append({"b_id": row.id, "b_wrapped": wrap_key(new, key, row.pseudonym)})
    update = sa.update(data_subjects).where(s.id == sa.bindparam("b_id")).values(
        wrapped_key=sa.bindparam("b_wrapped"))
    for k in range(0, len(rewrapped), _BATCH):
        await conn.execute(update, rewrapped[k:k + _BATCH])

    t = account_totp.c
    old_totp, new_totp = totp_key_of(old), totp_key_of(new)
    resealed: list[dict[str, Any]] = []
    for row in await conn.execute(sa.select(t.account_id, t.secret).order_by(t.account_id)):
        sealed = bytes(row.secret)
        if open_secret(new_totp, row.account_id, sealed) is not None:
            continue
        secret = open_secret(old_totp, row.account_id, sealed)
        if secret is None:
            raise RecordsUnreadable(f"the TOTP secret of account #{row.account_id} opens under neither the "
                                    "old nor the new records key: nothing was changed")
        resealed.append({"b_id": row.account_id, "b_secret": seal_secret(new_totp, row.account_id, secret)})
    update = sa.update(account_totp).where(t.account_id == sa.bindparam("b_id")).values(
        secret=sa.bindparam("b_secret"))
    for k in range(0, len(resealed), _BATCH):
        await conn.execute(update, resealed[k:k + _BATCH])
    return len(rewrapped), len(resealed)


async def _under(db: Database, installed: bytes | None, staged: bytes) -> str:
    """Which key the database is under: "staged", "installed" or "neither" ("staged" when no
    row tells: then either is right)."""
    s, t = data_subjects.c, account_totp.c
    async with db.connect("checking which records key the database is under") as conn:
        subject = (await conn.execute(sa.select(s.pseudonym, s.wrapped_key).order_by(s.id).limit(1))).first()
        totp = (await conn.execute(sa.select(t.account_id, t.secret).order_by(t.account_id).limit(1))).first()
    if subject is None and totp is None:
        return "staged"
    for name, kek in (("staged", staged), ("installed", installed)):
        if kek is None:
            continue
        if subject is not None:
            if unwrap_with(kek, bytes(subject.wrapped_key), subject.pseudonym) is not None:
                return name
        elif open_secret(totp_key_of(kek), totp.account_id, bytes(totp.secret)) is not None:  # type: ignore[union-attr]
            return name
    return "neither"


async def _counts(db: Database) -> tuple[int, int]:
    async with db.connect("counting record keys and TOTP secrets") as conn:
        subjects = (await conn.execute(sa.select(sa.func.count()).select_from(data_subjects))).scalar_one()
        totps = (await conn.execute(sa.select(sa.func.count()).select_from(account_totp))).scalar_one()
    return int(subjects), int(totps)


async def _recorded(log: Log, kek_id: str) -> int | None:
    """The index of a recent rotation event naming ``kek_id``, if the log has one."""
    size = await log.sequenced_size()
    for i in range(size - 1, max(0, size - _EVENT_LOOKBACK) - 1, -1):
        entry = await log.entry(i)
        if EVENT.encode() in entry:
            doc = orjson.loads(entry)
            if doc.get("kind") == EVENT and doc.get("kek_id") == kek_id:
                return i
    return None


async def _record(log: Log, actor: Actor, *, old: bytes | None, new: bytes, subjects: int, totps: int,
                  keep_old: bool, recovered: bool = False) -> int:
    try:
        entry = await record(log, EVENT, actor, kek_id=records_kek_id(new),
                             previous_kek_id=records_kek_id(old) if old is not None else None,
                             subjects=subjects, totp_secrets=totps,
                             old_key="retired" if keep_old else "discarded",
                             recovered=True if recovered else None)
    except (LedgerError, AppError) as e:
        raise Unavailable(f"the records key was rotated (database re-wrapped under key "
                           f"{records_kek_id(new)}), but the {EVENT} event could not be recorded: {e}; "
                           "run `rlhf-audit keys rotate-records-kek --recover` to finish") from e
    return entry.leaf_index


async def _settle(db: Database, log: Log, keyring: Keyring, *, keep_old: bool,
                  actor: Actor) -> Settled | None:
    staged = keyring.staged_records_kek()
    if staged is None:
        return None
    installed = keyring.installed_records_kek()
    kek_id = records_kek_id(staged)
    under = await _under(db, installed, staged)
    if under == "neither":
        raise RecordsUnreadable("the stored record keys open under neither records.key nor records.key.next: "
                           "restore the keys directory that belongs to this database")
    if under == "installed":
        keyring.drop_staged_records_kek()  # the re-wrap never committed
        return Settled("dropped", kek_id)
    if await _recorded(log, kek_id) is None:
        subjects, totps = await _counts(db)
        await _record(log, actor, old=installed, new=staged, subjects=subjects, totps=totps,
                      keep_old=keep_old, recovered=True)
    retired = keyring.install_staged_records_kek(keep_old=keep_old)
    if installed is not None:
        async with db.transaction("re-wrapping record keys left under the old records key") as conn:
            await _rewrap(conn, installed, staged)
    return Settled("installed", kek_id, None if retired is None else str(retired))


async def settle_records_kek(db: Database, log: Log, keyring: Keyring, *, keep_old: bool = True,
                             actor: Actor = SYSTEM, strict: bool = False) -> Settled | None:
    """Finish or undo an interrupted rotation (a ``records.key.next`` left behind); None when
    there is none, or when another process is rotating now (``strict``: RecordsKekPending)."""
    if keyring.staged_records_kek() is None:
        return None
    try:
        with keyring.records_kek_lock():
            return await _settle(db, log, keyring, keep_old=keep_old, actor=actor)
    except RecordsKekPending:
        if strict:
            raise
        return None  # a rotation is running elsewhere; the keyring refuses the KEK until it ends


async def rotate_records_kek(db: Database, log: Log, keyring: Keyring, *, actor: Actor = SYSTEM,
                             keep_old: bool = True) -> KekRotation:
    """Replace the records KEK (see the module docstring); an interrupted earlier rotation is
    settled first."""
    with keyring.records_kek_lock():
        await _settle(db, log, keyring, keep_old=keep_old, actor=actor)
        old = keyring.records_kek  # created if this home never had one
        new = AESGCM.generate_key(256)
        keyring.stage_records_kek(new)
        try:
            async with db.transaction("re-wrapping record keys under the new records key") as conn:
                subjects, totps = await _rewrap(conn, old, new)
        except BaseException:
            # the commit may have happened even so (a connection lost while committing): look.
            # Rows not under the new key mean it did not; unreadable, keep the staged key.
            with contextlib.suppress(Exception):
                if await _under(db, old, new) in ("installed", "neither"):
                    keyring.drop_staged_records_kek()
            raise
        leaf_index = await _record(log, actor, old=old, new=new, subjects=subjects, totps=totps,
                                   keep_old=keep_old)
        retired = keyring.install_staged_records_kek(keep_old=keep_old)
        async with db.transaction("re-wrapping record keys left under the old records key") as conn:
            more = await _rewrap(conn, old, new)  # a row another process wrapped meanwhile
        return KekRotation(records_kek_id(new), records_kek_id(old), subjects + more[0], totps + more[1],
                           None if retired is None else str(retired), leaf_index)
