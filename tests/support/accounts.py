"""Accounts and tokens made as the CLI makes them, and the checks every API test repeats."""

from __future__ import annotations

import httpx

from app.accounts import create_account, create_token
from app.core.keyring import Keyring
from ledger.events import Pseudonymizer
from ledger.log import Log
from tests.support.databases import database_of

PASSWORD = "correct horse battery"
PZ = Pseudonymizer(b"\x07" * 32)  # for apps without a keyring: names go on the log as pseudonyms under it


async def bootstrap(log: Log, keyring: Keyring, name: str = "root", role: str = "admin",
                    scopes: list[str] | None = None) -> str:
    """An account made as the CLI makes it, and a token for it."""
    db, pz = database_of(log), keyring.pseudonymizer
    await create_account(db, log, name, role, None if role == "service" else PASSWORD, pseudonymizer=pz)
    return (await create_token(db, log, name, scopes, pseudonymizer=pz)).token


async def token(log: Log, name: str, role: str, scopes: list[str] | None = None) -> str:
    """An account pseudonymised under ``PZ`` (an app without a keyring), and a token for it."""
    db = database_of(log)
    await create_account(db, log, name, role, None if role == "service" else PASSWORD, pseudonymizer=PZ)
    return (await create_token(db, log, name, scopes, pseudonymizer=PZ)).token


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem(r: httpx.Response, status: int, *words: str) -> str:
    """Assert an RFC 9457 problem answer with this status whose detail names each of ``words``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    detail = str(r.json()["detail"]) + " " + str(r.json().get("errors", ""))  # msgspec's own messages
    for word in words:
        assert word in detail, detail
    return detail
