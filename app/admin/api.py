"""The administration API (scope ``accounts:admin``): accounts, their tokens, run-time configuration.

- ``GET /api/v1/accounts``, ``POST /api/v1/accounts`` {name, role, password}
- ``GET /api/v1/accounts/{name}``, ``PATCH /api/v1/accounts/{name}`` {role?, disabled?}
- ``PUT /api/v1/accounts/{name}/password`` {password}
- ``DELETE /api/v1/accounts/{name}/totp``: removes a lost second factor (the account enrols again)
- ``GET|POST /api/v1/accounts/{name}/tokens`` {scopes?, expires_in_days?}: the secret is in the
  creation answer only; ``DELETE /api/v1/accounts/{name}/tokens/{prefix}`` revokes
- ``GET /api/v1/config``, ``PUT /api/v1/config`` {key: value, ...} (``app.config.runtime``)

Bodies are msgspec Structs (validated by Litestar: a bad body is a 400 problem detail), and every
change is an event on the log naming the admin's pseudonym (``app.accounts.service``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, delete, get, patch, post, put
from litestar.params import JSONBody, PathParameter

from ..accounts.service import (
    MAX_TOKEN_DAYS,
    AccountError,
    AccountInfo,
    TokenInfo,
    create_account,
    create_token,
    get_account,
    list_accounts,
    list_tokens,
    revoke_token,
    set_disabled,
    set_password,
    set_role,
)

# Litestar reads the handlers' annotations at run time: these are real imports.
from ..auth import totp
from ..auth.principal import authorized
from ..config.runtime import SETTINGS, SettingError, change, check
from ..core.deps import CallerDep, DbDep, KeyringDep, LogDep, SettingsDep
from ..core.keyring import Keyring
from ..core.roles import Role, Scope, is_service
from ..events.recording import Actor

__all__ = ["AccountsController", "ConfigController"]

Name = Annotated[str, PathParameter(max_length=64)]
ADMIN = {"scope": "accounts:admin"}
_NO_STORE = {"Cache-Control": "no-store"}


class NewAccount(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")]
    role: Role
    password: Annotated[str, msgspec.Meta(min_length=8, max_length=1024)] | None = None


class AccountChange(msgspec.Struct, forbid_unknown_fields=True):
    role: Role | None = None
    disabled: bool | None = None


class NewPassword(msgspec.Struct, forbid_unknown_fields=True):
    password: Annotated[str, msgspec.Meta(min_length=8, max_length=1024)]


class NewToken(msgspec.Struct, forbid_unknown_fields=True):
    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1, max_length=5)] | None = None
    expires_in_days: Annotated[float, msgspec.Meta(gt=0, le=MAX_TOKEN_DAYS)] | None = None


class AccountOut(msgspec.Struct):
    name: str
    role: str
    disabled: bool
    has_password: bool
    totp_enrolled: bool
    created_at: datetime


class TokenOut(msgspec.Struct):
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class CreatedTokenOut(msgspec.Struct):
    token: str
    prefix: str
    scopes: list[str]
    expires_at: datetime | None


def _account(a: AccountInfo) -> AccountOut:
    return AccountOut(a.name, a.role, a.disabled, a.has_password, a.totp_enrolled, a.created_at)


def _token(t: TokenInfo) -> TokenOut:
    return TokenOut(t.prefix, list(t.scopes), t.created_at, t.expires_at, t.revoked_at)


def _who(keyring: Keyring, caller: Actor) -> dict[str, Any]:
    """The keyword arguments every change takes: the keyring's pseudonymizer and the acting admin."""
    return {"pseudonymizer": keyring.pseudonymizer, "by": caller}


class AccountsController(Controller):
    path = "/api/v1/accounts"
    guards = [authorized]
    tags = ["administration"]

    @get("/", opt=ADMIN)
    async def list_all(self, db: DbDep) -> list[AccountOut]:
        """Every account, by name."""
        return [_account(a) for a in await list_accounts(db)]

    @post("/", opt=ADMIN)
    async def create(self, db: DbDep, log: LogDep, keyring: KeyringDep, caller: CallerDep,
                     data: JSONBody[NewAccount]) -> AccountOut:
        """Create an account (``account.created``); service accounts take no password."""
        if not is_service(data.role) and data.password is None:
            raise AccountError(f"a {data.role} account needs a password (at least 8 characters)")
        await create_account(db, log, data.name, data.role, data.password, **_who(keyring, caller))
        return _account(await get_account(db, data.name))

    @get("/{name:str}", opt=ADMIN)
    async def read(self, db: DbDep, name: Name) -> AccountOut:
        return _account(await get_account(db, name))

    @patch("/{name:str}", opt=ADMIN)
    async def update(self, db: DbDep, log: LogDep, keyring: KeyringDep, caller: CallerDep, name: Name,
                     data: JSONBody[AccountChange]) -> AccountOut:
        """Change the role (``account.role_changed``) and/or disable or enable the account."""
        if data.role is None and data.disabled is None:
            raise AccountError("nothing to change: send 'role' and/or 'disabled'")
        info = await get_account(db, name)
        if data.role is not None and data.role != info.role:
            info = await set_role(db, log, name, data.role, **_who(keyring, caller))
        if data.disabled is not None and data.disabled != info.disabled:
            info = await set_disabled(db, log, name, data.disabled, **_who(keyring, caller))
        return _account(info)

    @put("/{name:str}/password", opt=ADMIN, status_code=204)
    async def password(self, db: DbDep, log: LogDep, keyring: KeyringDep, caller: CallerDep, name: Name,
                       data: JSONBody[NewPassword]) -> None:
        """Set a new password (``account.password_changed``)."""
        await set_password(db, log, name, data.password, **_who(keyring, caller))

    @delete("/{name:str}/totp", opt=ADMIN, status_code=204)
    async def reset_totp(self, db: DbDep, log: LogDep, keyring: KeyringDep, caller: CallerDep,
                         name: Name) -> None:
        """Remove the account's second factor (``account.totp_reset``), e.g. after a lost phone."""
        await totp.reset(db, log, keyring, await get_account(db, name), by=caller)

    @get("/{name:str}/tokens", opt=ADMIN)
    async def tokens(self, db: DbDep, name: Name) -> list[TokenOut]:
        """The account's tokens, newest first, revoked and expired ones included."""
        return [_token(t) for t in await list_tokens(db, name)]

    @post("/{name:str}/tokens", opt=ADMIN)
    async def create_token(self, db: DbDep, log: LogDep, keyring: KeyringDep, caller: CallerDep, name: Name,
                           data: JSONBody[NewToken]) -> Response[CreatedTokenOut]:
        """A new token (``token.created``): its secret is in this answer and nowhere else."""
        expires = None if data.expires_in_days is None else timedelta(days=data.expires_in_days)
        created = await create_token(db, log, name, data.scopes, expires, **_who(keyring, caller))
        out = CreatedTokenOut(created.token, created.prefix, list(created.scopes), created.expires_at)
        return Response(out, status_code=201, headers=_NO_STORE)

    @delete("/{name:str}/tokens/{prefix:str}", opt=ADMIN, status_code=204)
    async def revoke(self, db: DbDep, log: LogDep, keyring: KeyringDep, caller: CallerDep, name: Name,
                     prefix: Annotated[str, PathParameter(max_length=12)]) -> None:
        """Revoke one of the account's tokens (``token.revoked``)."""
        await revoke_token(db, log, prefix, account=name, **_who(keyring, caller))


class ConfigController(Controller):
    path = "/api/v1/config"
    guards = [authorized]
    tags = ["administration"]

    @get("/", opt=ADMIN)
    async def read(self, settings: SettingsDep) -> dict[str, Any]:
        """The current run-time settings (see ``app.config.runtime``)."""
        return dict(settings.snapshot())

    @put("/", opt=ADMIN)
    async def update(self, settings: SettingsDep, caller: CallerDep,
                     data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        """Change some settings ({key: value}); each change is applied and logged (``config.changed``)."""
        if not data:
            raise SettingError(f"nothing to change: send some of {', '.join(SETTINGS)}")
        for key, value in data.items():  # check all before changing any
            check(key, value)
        for key, value in data.items():
            await change(settings, key, value, by=caller)
        return dict(settings.snapshot())
