"""Accounts, passwords and API tokens in the application's database, each change logged as an event.

- Passwords are hashed with argon2id (``argon2-cffi``), off the event loop. Service accounts
  have none: they authenticate with tokens only.
- Tokens are ``rat_`` + 43 characters of URL-safe base64 (256 random bits). Only their SHA-256
  is stored (a fast hash is right for high-entropy secrets), plus ``token_prefix``: the first 8
  characters after ``rat_``, to show the token in lists and the log and to find its row. The
  secret is returned once by :func:`create_token` and never written anywhere.
- Every account and token change is appended to the log after the database change commits, in
  the envelope of :mod:`app.events.recording` (``docs/events.md``): ``account.created``,
  ``account.role_changed``, ``account.disabled``/``enabled``, ``account.password_changed``,
  ``token.created``, ``token.revoked``. Account names never go on the log: the account acted on
  is its pseudonym (``subject``), and ``by`` (an :class:`app.events.recording.Actor`, ``SYSTEM`` for the
  CLI) who did it. So every writing function takes the ``pseudonymizer`` of the off-log keyring
  (``Keyring.of(home).pseudonymizer``; the server keeps it on ``app.state.keyring``).
- The last enabled admin can be neither disabled nor demoted: someone must be able to administer.

Every function takes the app's :class:`~app.core.database.Database` first; those that change
something also take the ``log`` they record the change on.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError

from ledger.events import Pseudonymizer
from ledger.log import Log

from ..core.database import Database
from ..core.errors import Invalid, Missing
from ..core.roles import ADMIN, ALL_SCOPES, HUMAN_SCOPES, ROLE_SCOPES, ROLES, is_service
from ..events.recording import SYSTEM, Actor, record
from .schema import account_totp, accounts, api_tokens

__all__ = [
    "ALL_SCOPES",
    "MAX_TOKEN_DAYS",
    "ROLES",
    "ROLE_SCOPES",
    "AccountError",
    "AccountInfo",
    "CreatedToken",
    "Principal",
    "TokenInfo",
    "UnknownAccount",
    "account_by_id",
    "authenticate_token",
    "create_account",
    "create_token",
    "get_account",
    "list_accounts",
    "list_tokens",
    "revoke_token",
    "set_disabled",
    "set_password",
    "set_role",
    "subject",
    "verify_password",
]

# ALL_SCOPES, HUMAN_SCOPES, ROLES and ROLE_SCOPES come from the roles table, app/core/roles.py.
TOKEN_PREFIX = "rat_"
MAX_TOKEN_DAYS = 3650  # the longest a token may live (ten years): the API, the portal and the CLI
_TOKEN = re.compile(r"rat_[A-Za-z0-9_-]{43}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_hasher = PasswordHasher()


class AccountError(Invalid):
    """A request about accounts or tokens that cannot be done (bad role, name or scope, duplicate)."""


class UnknownAccount(Missing):
    """No account of that name, or no token with that prefix."""


@dataclass(frozen=True)
class Principal:
    """Who a request speaks for, and what it may do.

    ``via`` is ``token`` (a Bearer API token, ``token_prefix`` set) or ``session`` (a portal
    sign-in: the role's scopes). ``needs_totp_enrolment``: an admin or overseer signed in
    without a second factor enrolled; the guards grant such a session nothing but enrolment.
    """

    account_id: int
    account: str
    role: str
    scopes: frozenset[str]
    token_prefix: str | None
    via: str = "token"
    needs_totp_enrolment: bool = False

    def actor(self, pseudonymizer: Pseudonymizer) -> Actor:
        """This principal as the log names it."""
        return Actor.of_account(pseudonymizer, self.account, self.role)


@dataclass(frozen=True)
class AccountInfo:
    id: int
    name: str
    role: str
    disabled: bool
    has_password: bool
    totp_enrolled: bool
    created_at: datetime
    password_tag: str = ""  # changes with the password: sessions from before a change end


@dataclass(frozen=True)
class TokenInfo:
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


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


def subject(pseudonymizer: Pseudonymizer, name: str) -> str:
    """The pseudonym the log uses for account ``name`` (the same as its :class:`Actor`'s)."""
    return pseudonymizer.pseudonym("account:" + name)


# Valid tokens seen in the last ``cache_seconds`` (the server passes its settings'
# ``token_cache_seconds``, RLHF_AUDIT_TOKEN_CACHE_SECONDS; TOKEN_CACHE_SECONDS is that setting's
# default), so an API under load does not read the database on every request. Any account or token
# change made in this process empties it; one made by another process (a CLI revoke, a second
# server) takes effect within that many seconds.
TOKEN_CACHE_SECONDS = 2.0
_token_cache: dict[tuple[int, bytes], tuple[float, Principal]] = {}


async def _execute(db: Database, what: str, stmt: Any) -> Any:
    """One statement; any change empties the token cache."""
    if not isinstance(stmt, sa.Select):
        _token_cache.clear()
    return await db.execute(what, stmt)


_INFO = (sa.select(accounts, account_totp.c.confirmed_at.label("totp_confirmed"))
         .outerjoin(account_totp, account_totp.c.account_id == accounts.c.id))


def _info(row: Any) -> AccountInfo:
    tag = "" if row.password_hash is None else hashlib.sha256(row.password_hash.encode()).hexdigest()[:16]
    return AccountInfo(row.id, row.name, row.role, bool(row.disabled), row.password_hash is not None,
                       row.totp_confirmed is not None, _aware(row.created_at) or _now(), tag)


async def _account(db: Database, name: str) -> Any:
    result = await _execute(db, "reading an account", _INFO.where(accounts.c.name == name))
    row = result.first()
    if row is None:
        raise UnknownAccount(f"no account named {name!r}")
    return row


async def get_account(db: Database, name: str) -> AccountInfo:
    return _info(await _account(db, name))


async def account_by_id(db: Database, account_id: int) -> AccountInfo | None:
    row = (await _execute(db, "reading an account", _INFO.where(accounts.c.id == account_id))).first()
    return None if row is None else _info(row)


async def list_accounts(db: Database) -> list[AccountInfo]:
    rows = (await _execute(db, "listing accounts", _INFO.order_by(accounts.c.name))).all()
    return [_info(r) for r in rows]


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise AccountError("passwords must be at least 8 characters")
    if len(password) > 1024:
        raise AccountError("passwords must be at most 1024 characters")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")


async def create_account(
    db: Database, log: Log, name: str, role: str, password: str | None = None, *,
    pseudonymizer: Pseudonymizer, by: Actor = SYSTEM,
) -> int:
    """Create an account; return its id. Service accounts take no password; the others sign in
    with one (without, they can use only tokens)."""
    _check_role(role)
    if not _NAME.fullmatch(name):
        raise AccountError(f"account name {name!r} must be 1-64 of A-Z a-z 0-9 . _ @ - "
                           "(starting with a letter or digit)")
    if is_service(role) and password is not None:
        raise AccountError("service accounts have no password; they use API tokens")
    if password is not None:
        _check_password(password)
    hashed = None if password is None else await asyncio.to_thread(_hasher.hash, password)
    try:
        result = await _execute(db, "creating an account", sa.insert(accounts).values(
            name=name, role=role, password_hash=hashed, disabled=False, created_at=_now()))
    except IntegrityError:
        raise AccountError(f"an account named {name!r} already exists") from None
    await record(log, "account.created", by, subject=subject(pseudonymizer, name), subject_role=role)
    return int(result.inserted_primary_key[0])


async def set_password(
    db: Database, log: Log, name: str, password: str, *, pseudonymizer: Pseudonymizer, by: Actor = SYSTEM
) -> None:
    row = await _account(db, name)
    if is_service(row.role):
        raise AccountError("service accounts have no password; they use API tokens")
    _check_password(password)
    hashed = await asyncio.to_thread(_hasher.hash, password)
    await _execute(db, "setting a password",
                   sa.update(accounts).where(accounts.c.id == row.id).values(password_hash=hashed))
    await record(log, "account.password_changed", by, subject=subject(pseudonymizer, name))


async def _other_enabled_admins(db: Database, account_id: int) -> int:
    query = (sa.select(sa.func.count()).select_from(accounts)
             .where(accounts.c.role == ADMIN, accounts.c.disabled == sa.false(),
                    accounts.c.id != account_id))
    return int((await _execute(db, "counting admins", query)).scalar_one())


async def set_role(
    db: Database, log: Log, name: str, role: str, *, pseudonymizer: Pseudonymizer, by: Actor = SYSTEM
) -> AccountInfo:
    """Change the role of ``name``. Tokens keep their scopes only while the new role allows them."""
    _check_role(role)
    row = await _account(db, name)
    if row.role == role:
        raise AccountError(f"{name!r} is already a {role}")
    if is_service(row.role) != is_service(role):
        raise AccountError("service accounts and password accounts cannot be turned into each other")
    if row.role == ADMIN and not row.disabled and not await _other_enabled_admins(db, row.id):
        raise AccountError("this is the last enabled admin; make another admin first")
    await _execute(db, "changing a role",
                   sa.update(accounts).where(accounts.c.id == row.id).values(role=role))
    await record(log, "account.role_changed", by, subject=subject(pseudonymizer, name),
                 from_role=row.role, to_role=role)
    return await get_account(db, name)


async def set_disabled(
    db: Database, log: Log, name: str, disabled: bool, *, pseudonymizer: Pseudonymizer, by: Actor = SYSTEM
) -> AccountInfo:
    """Disable (its tokens and sessions stop working at once) or enable ``name`` again."""
    row = await _account(db, name)
    if bool(row.disabled) == disabled:
        raise AccountError(f"{name!r} is already {'disabled' if disabled else 'enabled'}")
    if disabled and row.role == ADMIN and not await _other_enabled_admins(db, row.id):
        raise AccountError("this is the last enabled admin; make another admin first")
    await _execute(db, "disabling an account",
                   sa.update(accounts).where(accounts.c.id == row.id).values(disabled=disabled))
    await record(log, "account.disabled" if disabled else "account.enabled", by,
                 subject=subject(pseudonymizer, name))
    return await get_account(db, name)


async def verify_password(db: Database, name: str, password: str) -> bool:
    """True when ``name`` is an enabled account with this password."""
    try:
        row = await _account(db, name)
    except UnknownAccount:
        await asyncio.to_thread(_hasher.hash, password)  # the same time as for a known name
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
    if is_service(role) and wanted & HUMAN_SCOPES:
        raise AccountError(f"a service account may not hold {', '.join(sorted(wanted & HUMAN_SCOPES))}: "
                           "decisions, erasure and administration are taken by people")
    if not is_service(role) and not wanted <= ROLE_SCOPES[role]:
        raise AccountError(f"a {role} may not hold {', '.join(sorted(wanted - ROLE_SCOPES[role]))}")
    if not wanted:
        raise AccountError("a token needs at least one scope (service accounts: pass --scope)")
    return tuple(s for s in ALL_SCOPES if s in wanted)


async def create_token(
    db: Database, log: Log, account: str, scopes: Iterable[str] | None = None,
    expires_in: timedelta | None = None, *, pseudonymizer: Pseudonymizer, by: Actor = SYSTEM,
) -> CreatedToken:
    """A new token for ``account``: the role's scopes, or ``scopes`` (within the role's)."""
    row = await _account(db, account)
    if row.disabled:
        raise AccountError(f"account {account!r} is disabled")
    granted = _scopes_for(row.role, scopes)
    if expires_in is not None and expires_in < timedelta(0):
        raise AccountError("expires_in must not be negative")
    if expires_in is not None and expires_in > timedelta(days=MAX_TOKEN_DAYS):
        raise AccountError(f"a token may live at most {MAX_TOKEN_DAYS} days")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    prefix = raw[len(TOKEN_PREFIX):len(TOKEN_PREFIX) + 8]
    now = _now()
    try:
        expires_at = None if expires_in is None else now + expires_in
    except OverflowError:
        raise AccountError("expires_in is too far in the future") from None
    await _execute(db, "creating a token", sa.insert(api_tokens).values(
        account_id=row.id, token_prefix=prefix, token_hash=_token_hash(raw),
        scopes=" ".join(granted), created_at=now, expires_at=expires_at))
    await record(log, "token.created", by, subject=subject(pseudonymizer, account), prefix=prefix,
                 scopes=list(granted), expires_at=None if expires_at is None else expires_at.isoformat())
    return CreatedToken(raw, prefix, granted, expires_at)


async def list_tokens(db: Database, account: str) -> list[TokenInfo]:
    """The tokens of ``account``, newest first (revoked and expired ones included)."""
    row = await _account(db, account)
    query = (sa.select(api_tokens).where(api_tokens.c.account_id == row.id)
             .order_by(api_tokens.c.created_at.desc(), api_tokens.c.id.desc()))
    return [TokenInfo(t.token_prefix, tuple(t.scopes.split()), _aware(t.created_at) or _now(),
                      _aware(t.expires_at), _aware(t.revoked_at))
            for t in (await _execute(db, "listing tokens", query)).all()]


async def revoke_token(
    db: Database, log: Log, prefix: str, *, pseudonymizer: Pseudonymizer, by: Actor = SYSTEM,
    account: str | None = None,
) -> None:
    """Revoke the token with this prefix (``rat_`` optional); only ``account``'s when given.
    Revoking twice is an error."""
    prefix = prefix.removeprefix(TOKEN_PREFIX)
    query = (sa.select(api_tokens.c.id, api_tokens.c.revoked_at, accounts.c.name)
             .join(accounts, accounts.c.id == api_tokens.c.account_id)
             .where(api_tokens.c.token_prefix == prefix))
    if account is not None:
        query = query.where(accounts.c.name == account)
    rows = (await _execute(db, "reading tokens", query)).all()
    if not rows:
        raise UnknownAccount(f"no token with prefix {prefix!r}" + (f" for {account!r}" if account else ""))
    if len(rows) > 1:
        raise AccountError(f"{len(rows)} tokens share prefix {prefix!r}")
    [row] = rows
    if row.revoked_at is not None:
        raise AccountError(f"token {prefix!r} is already revoked")
    await _execute(db, "revoking a token",
                   sa.update(api_tokens).where(api_tokens.c.id == row.id).values(revoked_at=_now()))
    await record(log, "token.revoked", by, subject=subject(pseudonymizer, row.name), prefix=prefix)


async def authenticate_token(db: Database, raw: str, *,
                             cache_seconds: float = TOKEN_CACHE_SECONDS) -> Principal | None:
    """The principal of a valid token; None when malformed, unknown, expired, revoked or disabled.

    The scopes are those granted at creation that the account's current role still allows; a
    valid answer is trusted for ``cache_seconds`` (0: never cached)."""
    if not _TOKEN.fullmatch(raw):
        return None
    digest = _token_hash(raw)
    key = (id(db), digest)
    hit = _token_cache.get(key) if cache_seconds > 0 else None
    if hit is not None and time.monotonic() < hit[0]:
        return hit[1]
    query = (sa.select(api_tokens, accounts.c.name, accounts.c.role, accounts.c.disabled)
             .join(accounts, accounts.c.id == api_tokens.c.account_id)
             .where(api_tokens.c.token_prefix == raw[4:12]))
    now = _now()
    for row in (await _execute(db, "checking a token", query)).all():
        if not hmac.compare_digest(bytes(row.token_hash), digest):
            continue
        expires_at = _aware(row.expires_at)
        if row.revoked_at is not None or row.disabled or (expires_at is not None and now >= expires_at):
            return None
        scopes = frozenset(row.scopes.split())
        if not is_service(row.role):
            scopes &= ROLE_SCOPES[row.role]
        principal = Principal(row.account_id, row.name, row.role, scopes, row.token_prefix)
        until = time.monotonic() + cache_seconds
        if expires_at is not None:
            until = min(until, time.monotonic() + (expires_at - now).total_seconds())
        if len(_token_cache) > 10_000:
            _token_cache.clear()
        _token_cache[key] = (until, principal)
        return principal
    return None
