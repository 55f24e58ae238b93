"""Accounts, passwords and API tokens over the log's database, each change logged as an event.

- Passwords are hashed with argon2id (``argon2-cffi``), off the event loop. Service accounts
  have none: they authenticate with tokens only.
- Tokens are ``rat_`` + 43 characters of URL-safe base64 (256 random bits). Only their SHA-256
  is stored (a fast hash is right for high-entropy secrets), plus ``token_prefix``: the first 8
  characters after ``rat_``, to show the token in lists and the log and to find its row. The
  secret is returned once by :func:`create_token` and never written anywhere.
- Every account and token change is appended to the log (``account.created``, ``token.created``,
  ``token.revoked``, ``account.password_changed``) after the database change commits, naming
  who did it (``by``). Neither secrets nor hashes go on the log.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ledger.errors import EntryError, NotFound, StorageError
from ledger.log import Log

from .schema import ROLES, accounts, api_tokens

__all__ = [
    "ALL_SCOPES",
    "ROLE_SCOPES",
    "AccountError",
    "CreatedToken",
    "Principal",
    "UnknownAccount",
    "authenticate_token",
    "create_account",
    "create_token",
    "revoke_token",
    "set_password",
    "verify_password",
]

ALL_SCOPES = ("events:write", "events:read", "read", "jobs:submit", "accounts:admin")
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "admin": frozenset(ALL_SCOPES),
    "auditor": frozenset({"read", "events:read"}),
    "operator": frozenset({"events:write", "events:read", "jobs:submit", "read"}),
    "overseer": frozenset({"events:write", "events:read", "read"}),
    "service": frozenset(),  # what is asked for at token creation
}
TOKEN_PREFIX = "rat_"
_TOKEN = re.compile(r"rat_[A-Za-z0-9_-]{43}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_hasher = PasswordHasher()


class AccountError(EntryError):
    """A request about accounts or tokens that cannot be done (bad role, name or scope, duplicate)."""


class UnknownAccount(NotFound):
    """No account of that name, or no token with that prefix."""


@dataclass(frozen=True)
class Principal:
    """Who a valid token speaks for, and what it may do."""

    account_id: int
    account: str
    role: str
    scopes: frozenset[str]
    token_prefix: str


@dataclass(frozen=True)
class CreatedToken:
    token: str  # the secret: shown once
    prefix: str
    scopes: tuple[str, ...]
    expires_at: datetime | None


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(t: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were written as UTC."""
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


def _token_hash(raw: str) -> bytes:
    return hashlib.sha256(raw.encode()).digest()


async def _db(log: Log, what: str, stmt: Any) -> Any:
    try:
        async with log.store.engine.begin() as conn:
            return await conn.execute(stmt)
    except IntegrityError:
        raise
    except SQLAlchemyError as e:
        raise StorageError(f"database error while {what}: {e}") from e


async def _account(log: Log, name: str) -> Any:
    result = await _db(log, "reading an account", sa.select(accounts).where(accounts.c.name == name))
    row = result.first()
    if row is None:
        raise UnknownAccount(f"no account named {name!r}")
    return row


async def _record(log: Log, event: dict[str, Any]) -> None:
    await log.append([event])


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise AccountError("passwords must be at least 8 characters")


async def create_account(
    log: Log, name: str, role: str, password: str | None = None, *, by: str = "cli"
) -> int:
    """Create an account; return its id. Service accounts take no password, the others need one."""
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    if not _NAME.fullmatch(name):
        raise AccountError(f"account name {name!r} must be 1-64 of A-Z a-z 0-9 . _ @ - "
                           "(starting with a letter or digit)")
    if role == "service" and password is not None:
        raise AccountError("service accounts have no password; they use API tokens")
    if password is not None:
        _check_password(password)
    hashed = None if password is None else await asyncio.to_thread(_hasher.hash, password)
    try:
        result = await _db(log, "creating an account", sa.insert(accounts).values(
            name=name, role=role, password_hash=hashed, disabled=False, created_at=_now()))
    except IntegrityError:
        raise AccountError(f"an account named {name!r} already exists") from None
    await _record(log, {"kind": "account.created", "account": name, "role": role, "by": by})
    return int(result.inserted_primary_key[0])


async def set_password(log: Log, name: str, password: str, *, by: str = "cli") -> None:
    row = await _account(log, name)
    if row.role == "service":
        raise AccountError("service accounts have no password; they use API tokens")
    _check_password(password)
    hashed = await asyncio.to_thread(_hasher.hash, password)
    await _db(log, "setting a password",
              sa.update(accounts).where(accounts.c.id == row.id).values(password_hash=hashed))
    await _record(log, {"kind": "account.password_changed", "account": name, "by": by})


async def verify_password(log: Log, name: str, password: str) -> bool:
    """True when ``name`` is an enabled account with this password."""
    try:
        row = await _account(log, name)
    except UnknownAccount:
        return False
    if row.disabled or row.password_hash is None:
        return False
    try:
        return bool(await asyncio.to_thread(_hasher.verify, row.password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def _scopes_for(role: str, asked: Iterable[str] | None) -> tuple[str, ...]:
    wanted = set(ROLE_SCOPES[role] if asked is None else asked)
    unknown = wanted - set(ALL_SCOPES)
    if unknown:
        raise AccountError(f"unknown scope(s) {', '.join(sorted(unknown))}: "
                           f"choose from {', '.join(ALL_SCOPES)}")
    if role != "service" and not wanted <= ROLE_SCOPES[role]:
        raise AccountError(f"a {role} may not hold {', '.join(sorted(wanted - ROLE_SCOPES[role]))}")
    if not wanted:
        raise AccountError("a token needs at least one scope (service accounts: pass --scope)")
    return tuple(s for s in ALL_SCOPES if s in wanted)


async def create_token(
    log: Log, account: str, scopes: Iterable[str] | None = None,
    expires_in: timedelta | None = None, *, by: str = "cli",
) -> CreatedToken:
    """A new token for ``account``: the role's scopes, or ``scopes`` (within the role's)."""
    row = await _account(log, account)
    if row.disabled:
        raise AccountError(f"account {account!r} is disabled")
    granted = _scopes_for(row.role, scopes)
    if expires_in is not None and expires_in < timedelta(0):
        raise AccountError("expires_in must not be negative")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    prefix = raw[len(TOKEN_PREFIX):len(TOKEN_PREFIX) + 8]
    now = _now()
    expires_at = None if expires_in is None else now + expires_in
    await _db(log, "creating a token", sa.insert(api_tokens).values(
        account_id=row.id, token_prefix=prefix, token_hash=_token_hash(raw),
        scopes=" ".join(granted), created_at=now, expires_at=expires_at))
    await _record(log, {
        "kind": "token.created", "account": account, "prefix": prefix, "scopes": list(granted),
        "expires_at": None if expires_at is None else expires_at.isoformat(), "by": by})
    return CreatedToken(raw, prefix, granted, expires_at)


async def revoke_token(log: Log, prefix: str, *, by: str = "cli") -> None:
    """Revoke the token with this prefix (``rat_`` optional). Revoking twice is an error."""
    prefix = prefix.removeprefix(TOKEN_PREFIX)
    query = (sa.select(api_tokens.c.id, api_tokens.c.revoked_at, accounts.c.name)
             .join(accounts, accounts.c.id == api_tokens.c.account_id)
             .where(api_tokens.c.token_prefix == prefix))
    rows = (await _db(log, "reading tokens", query)).all()
    if not rows:
        raise UnknownAccount(f"no token with prefix {prefix!r}")
    if len(rows) > 1:
        raise AccountError(f"{len(rows)} tokens share prefix {prefix!r}")
    [row] = rows
    if row.revoked_at is not None:
        raise AccountError(f"token {prefix!r} is already revoked")
    await _db(log, "revoking a token",
              sa.update(api_tokens).where(api_tokens.c.id == row.id).values(revoked_at=_now()))
    await _record(log, {"kind": "token.revoked", "account": row.name, "prefix": prefix, "by": by})


async def authenticate_token(log: Log, raw: str) -> Principal | None:
    """The principal of a valid token; None when malformed, unknown, expired, revoked or disabled."""
    if not _TOKEN.fullmatch(raw):
        return None
    digest = _token_hash(raw)
    query = (sa.select(api_tokens, accounts.c.name, accounts.c.role, accounts.c.disabled)
             .join(accounts, accounts.c.id == api_tokens.c.account_id)
             .where(api_tokens.c.token_prefix == raw[4:12]))
    now = _now()
    for row in (await _db(log, "checking a token", query)).all():
        if not hmac.compare_digest(bytes(row.token_hash), digest):
            continue
        expires_at = _aware(row.expires_at)
        if row.revoked_at is not None or row.disabled or (expires_at is not None and now >= expires_at):
            return None
        return Principal(row.account_id, row.name, row.role, frozenset(row.scopes.split()), row.token_prefix)
    return None
