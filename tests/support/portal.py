"""The portal driven over ASGI as a browser would: a cookie-keeping client, sign-in with the form's
CSRF token, second-factor enrolment."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pyotp

from app.accounts import create_account
from app.core.keyring import Keyring
from app.server.core import create_app
from ledger.log import Log
from tests.support.asgi import lifespan_of
from tests.support.databases import database_of

HTML = {"Accept": "text/html,application/xhtml+xml"}
PASSWORD = "portal-password-1"


@asynccontextmanager
async def portal(log: Log, keys: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan on the test's loop, and a cookie-keeping client."""
    app = create_app(db=database_of(log), log=log, keyring=Keyring(keys))
    async with lifespan_of(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                   base_url="http://portal.test", headers=HTML) as client:
        yield client


def csrf(client: httpx.AsyncClient) -> str:
    token = client.cookies.get("csrftoken")
    assert token, "the portal sets a CSRF cookie on pages"
    return token


async def sign_in(client: httpx.AsyncClient, name: str, code: str = "",
                  next_path: str = "/") -> httpx.Response:
    await client.get("/login")
    return await client.post("/auth/login", data={"username": name, "password": PASSWORD, "totp": code,
                                                  "next": next_path, "_csrf_token": csrf(client)})


async def enrolled(client: httpx.AsyncClient, name: str) -> None:
    """Sign in as an admin or overseer and enrol the second factor it needs."""
    await sign_in(client, name)
    enrol = await client.post("/account/totp", data={"_csrf_token": csrf(client)})
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', enrol.text).group(1)  # type: ignore[union-attr]
    done = await client.post("/account/totp/confirm", data={"code": pyotp.TOTP(secret).now(),
                                                            "_csrf_token": csrf(client)})
    assert done.status_code == 303, done.text


async def accounts(log: Log, keys: Path, **roles: str) -> None:
    """One account per ``name=role``, all with ``PASSWORD``."""
    db, pz = database_of(log), Keyring(keys).pseudonymizer
    for name, role in roles.items():
        await create_account(db, log, name, role, PASSWORD, pseudonymizer=pz)
