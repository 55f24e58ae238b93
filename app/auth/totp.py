"""TOTP second factors (RFC 6238, authenticator apps) for any account with a password.

Enrolment is two steps: :func:`begin` makes a secret and returns it (with the ``otpauth://``
URI, which :func:`qr_svg` draws as a QR code), :func:`confirm` checks a first code and only then
makes the factor count. A refused first code leaves the pending secret in place: :func:`pending`
gives it back to the same account so it can retry with the entry already in its app.
Secrets are stored AES-256-GCM encrypted under a key derived from the off-log keyring
(``app.auth.keys``), bound to the account id, and never logged; the log gets
``account.totp_enrolled`` {``subject``} only. A code is accepted within one 30-second step either
side, and never twice (``last_step``), so an observed code cannot be replayed. An admin can
:func:`reset` a lost factor (``account.totp_reset``); the account then enrols again.
"""

from __future__ import annotations

import hmac
import os
import re
import time
from datetime import UTC, datetime

import pyotp
import segno
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.log import Log

from ..accounts import AccountError, AccountInfo, subject
from ..accounts.schema import account_totp
from ..core.database import Database
from ..core.errors import Unavailable
from ..core.keyring import Keyring
from ..core.roles import is_service
from ..events.recording import Actor, record
from .keys import totp_key

__all__ = ["ISSUER", "begin", "confirm", "open_secret", "pending", "qr_svg", "reset", "seal_secret", "verify"]

ISSUER = "RLHF Audit Trail"
_CODE = re.compile(r"\d{6}")


def _aad(account_id: int) -> bytes:
    return b"rlhf-audit totp account %d" % account_id


def seal_secret(key: bytes, account_id: int, secret: str) -> bytes:
    """The stored form of ``secret``: nonce + AES-256-GCM under ``key`` (a :func:`totp_key`)."""
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, secret.encode(), _aad(account_id))


def open_secret(key: bytes, account_id: int, sealed: bytes) -> str | None:
    """The secret ``sealed`` holds if it opens under ``key``, else None."""
    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], _aad(account_id)).decode()
    except (InvalidTag, ValueError):
        return None


def _seal(keyring: Keyring, account_id: int, secret: str) -> bytes:
    return seal_secret(totp_key(keyring), account_id, secret)


def _open(keyring: Keyring, account_id: int, sealed: bytes) -> str:
    secret = open_secret(totp_key(keyring), account_id, sealed)
    if secret is None:
        raise Unavailable("a stored TOTP secret does not decrypt: were the keys replaced?")
    return secret


async def _execute(db: Database, what: str, *stmts: sa.Executable) -> list[sa.Result[object]]:
    """The statements in one transaction."""
    async with db.transaction(what) as conn:
        return [await conn.execute(s) for s in stmts]


async def _row(db: Database, account_id: int) -> sa.Row[object] | None:
    [result] = await _execute(db, "reading a TOTP factor",
                              sa.select(account_totp).where(account_totp.c.account_id == account_id))
    return result.first()


def _step(secret: str, code: str, now: float) -> int | None:
    """The time step ``code`` belongs to (within one step either side of now), or None."""
    code = code.strip().replace(" ", "")
    if not _CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now // totp.interval)
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


async def begin(db: Database, keyring: Keyring, account: AccountInfo) -> tuple[str, str]:
    """A new, unconfirmed secret for ``account``: (secret, otpauth URI), replacing any pending one."""
    if is_service(account.role):
        raise AccountError("service accounts sign in with tokens only; they have no second factor")
    if account.totp_enrolled:
        raise AccountError("a second factor is already enrolled for this account")
    secret = pyotp.random_base32()
    table = account_totp
    await _execute(db, "starting TOTP enrolment",
                   sa.delete(table).where(table.c.account_id == account.id),
                   sa.insert(table).values(account_id=account.id, secret=_seal(keyring, account.id, secret),
                                           created_at=datetime.now(UTC)))
    return secret, _uri(account, secret)


def _uri(account: AccountInfo, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account.name, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """``uri`` as a QR code (error correction M, 4 px black modules on white, the standard
    4-module quiet zone): an inline ``<svg>`` drawn here with segno, so nothing is fetched."""
    return str(segno.make_qr(uri, error="m").svg_inline(scale=4, border=4, dark="#000", light="#fff"))


async def pending(db: Database, keyring: Keyring, account: AccountInfo) -> tuple[str, str] | None:
    """The (secret, otpauth URI) of ``account``'s unconfirmed enrolment, if one is pending."""
    if account.totp_enrolled:
        return None
    row = await _row(db, account.id)
    if row is None or row.confirmed_at is not None:
        return None
    secret = _open(keyring, account.id, row.secret)
    return secret, _uri(account, secret)


async def confirm(db: Database, log: Log, keyring: Keyring, account: AccountInfo, code: str, *,
                  by: Actor) -> None:
    """Check the first code of a pending enrolment and make the factor required from now on."""
    row = await _row(db, account.id)
    if row is None or account.totp_enrolled:
        raise AccountError("no TOTP enrolment is pending for this account; start one first")
    step = _step(_open(keyring, account.id, row.secret), code, time.time())
    if step is None:
        raise AccountError("that code is not valid now: check the authenticator app's clock and try again "
                           "with the same entry (the enrolment stays pending)")
    table = account_totp
    [done] = await _execute(db, "confirming TOTP enrolment", sa.update(table).where(
        table.c.account_id == account.id, table.c.confirmed_at.is_(None)).values(
        confirmed_at=datetime.now(UTC), last_step=step))
    if not done.rowcount:  # type: ignore[attr-defined]
        raise AccountError("this enrolment was already confirmed")
    await record(log, "account.totp_enrolled", by, subject=subject(keyring.pseudonymizer, account.name))


async def verify(db: Database, keyring: Keyring, account_id: int, code: str) -> bool:
    """Whether ``code`` is a current, unused code of the account's confirmed factor."""
    row = await _row(db, account_id)
    if row is None or row.confirmed_at is None:
        return False
    step = _step(_open(keyring, account_id, row.secret), code, time.time())
    if step is None:
        return False
    table = account_totp
    [used] = await _execute(db, "using a TOTP code", sa.update(table).where(
        table.c.account_id == account_id,
        sa.or_(table.c.last_step.is_(None), table.c.last_step < step)).values(last_step=step))
    return bool(used.rowcount)  # type: ignore[attr-defined]


async def reset(db: Database, log: Log, keyring: Keyring, account: AccountInfo, *, by: Actor) -> None:
    """Remove the account's factor (a lost phone); its next sign-in needs none until it enrols again."""
    if not account.totp_enrolled:
        raise AccountError(f"{account.name!r} has no second factor enrolled")
    await _execute(db, "removing a TOTP factor",
                   sa.delete(account_totp).where(account_totp.c.account_id == account.id))
    await record(log, "account.totp_reset", by, subject=subject(keyring.pseudonymizer, account.name))
