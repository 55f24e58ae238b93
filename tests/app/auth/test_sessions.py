"""Portal sessions: sign-in with and without TOTP, CSRF, expiry, fixation, sign-out, Redis store.

Real log (SQLite and PostgreSQL), real Redis for the shared-store case, pyotp as the
authenticator app.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx
import pyotp
import pytest
import sqlalchemy as sa

from app.accounts import create_account, get_account
from app.accounts.schema import account_totp
from app.core.database import Database
from app.core.keyring import Keyring
from app.events.recording import Actor
from ledger.log import Log
from tests.support.accounts import PASSWORD, auth, bootstrap, problem
from tests.support.asgi import running
from tests.support.databases import database_of
from tests.support.log_reading import events
from tests.support.sessions import JSON, csrf, sign_in

REDIS_URL = os.environ.get("RLHF_AUDIT_TEST_REDIS", "redis://127.0.0.1:6379/0")


async def make(log: Log, keyring: Keyring, name: str, role: str) -> None:
    await create_account(database_of(log), log, name, role, PASSWORD, pseudonymizer=keyring.pseudonymizer)


async def test_sign_in_csrf_and_sign_out(log: Log, keyring: Keyring) -> None:
    await make(log, keyring, "olga", "operator")
    other = await bootstrap(log, keyring, "svc", "service", ["events:write"])
    async with running(log, keyring) as (_, client):
        problem(await client.get("/api/v1/whoami"), 401)
        # sign-in itself needs the CSRF token (no signing a victim into the forger's account)
        r = await client.post("/auth/login", data={"username": "olga", "password": PASSWORD}, headers=JSON)
        problem(r, 403, "CSRF")
        problem(await sign_in(client, "olga", "wrong password"), 401, "wrong")
        problem(await sign_in(client, "nobody"), 401)
        before = client.cookies.get("rlhf_session")
        assert before is None
        r = await sign_in(client, "olga")
        assert r.status_code == 200, r.text
        assert r.json() == {"account": "olga", "role": "operator", "needs_totp_enrolment": False}
        cookie = r.headers["set-cookie"]
        assert "rlhf_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace(
            "Lax", "lax")
        who = (await client.get("/api/v1/whoami")).json()
        assert who == {"account": "olga", "role": "operator",
                       "scopes": ["events:read", "events:write", "jobs:submit", "read"]}
        info = (await client.get("/auth/session")).json()
        assert info["authenticated"] and info["via"] == "session" and info["account"] == "olga"

        # a state-changing request on the session cookie without the token: refused
        size = await log.sequenced_size()
        problem(await client.post("/api/v1/events", json={"kind": "x"}), 403, "CSRF")
        problem(await client.post("/api/v1/events", json={"kind": "x"}, headers={"X-CSRFToken": "forged"}),
                403)
        assert await log.sequenced_size() == size
        token = await csrf(client)
        r = await client.post("/api/v1/events", json={"kind": "x"}, headers={"X-CSRFToken": token})
        assert r.status_code == 201 and r.headers["x-recorded-by"] == "olga", r.text
        # a Bearer request is exempt, and speaks for the token even with the session cookie along
        r = await client.post("/api/v1/events", json={"kind": "x"}, headers=auth(other))
        assert r.status_code == 201 and r.headers["x-recorded-by"] == "svc", r.text
        # ... and a bad token is no one: the session does not stand in for it
        problem(await client.get("/api/v1/whoami", headers=auth("rat_" + "A" * 43)), 401)
        problem(await client.get("/api/v1/whoami", headers={"Authorization": "Basic b2xnYQ=="}), 401)

        problem(await client.post("/auth/logout", headers=JSON), 403, "CSRF")
        r = await client.post("/auth/logout", headers={**JSON, "X-CSRFToken": await csrf(client)})
        assert r.status_code == 200 and "rlhf_session=null" in r.headers["set-cookie"], r.text
        problem(await client.get("/api/v1/whoami"), 401)
        assert not (await client.get("/auth/session")).json()["authenticated"]

        # an old session id, replayed after sign-out, is dead on the server too
        client.cookies.set("rlhf_session", cookie.split(";")[0].split("=", 1)[1], domain="t.local")
        problem(await client.get("/api/v1/whoami"), 401)


async def test_a_token_from_another_secret_is_replaced_not_reused(log: Log, keyring: Keyring) -> None:
    """After the records key (from which the CSRF secret derives) rotates, a browser still sends
    the old cookie; the page must hand it a new token rather than one every form fails with."""
    from litestar.middleware.csrf import generate_csrf_token

    await make(log, keyring, "olga", "operator")
    async with running(log, keyring) as (_, client):
        stale = generate_csrf_token(secret="a secret this server never had")
        r = await client.get("/auth/session", headers={"Cookie": f"csrftoken={stale}"})
        fresh = r.json()["csrf_token"]
        assert fresh != stale and f"csrftoken={fresh}" in r.headers["set-cookie"]
        assert client.cookies.get("csrftoken") == fresh
        assert (await sign_in(client, "olga")).status_code == 200
        assert await csrf(client) == fresh  # a valid cookie is kept


async def test_form_sign_in_redirects(log: Log, keyring: Keyring) -> None:
    await make(log, keyring, "olga", "operator")
    async with running(log, keyring) as (_, client):
        token = await csrf(client)
        form: dict[str, Any] = {"username": "olga", "password": "nope", "next": "/runs", "_csrf_token": token}
        r = await client.post("/auth/login", data=form)
        assert r.status_code == 303 and r.headers["location"] == "/login?error=invalid&next=/runs"
        r = await client.post("/auth/login", data=form | {"password": PASSWORD})
        assert r.status_code == 303 and r.headers["location"] == "/runs"
        assert (await client.get("/api/v1/whoami")).status_code == 200
        for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
            r = await client.post("/auth/login", data=form | {"password": PASSWORD, "next": evil})
            assert r.status_code == 303 and r.headers["location"] == "/", evil
        problem(await client.post("/auth/login", data={"password": "x", "_csrf_token": token}, headers=JSON),
                400)
        r = await client.post("/auth/logout", data={"_csrf_token": token})
        assert r.status_code == 303 and r.headers["location"] == "/login"


async def test_session_id_changes_at_sign_in(log: Log, keyring: Keyring) -> None:
    await make(log, keyring, "olga", "operator")
    async with running(log, keyring) as (_, client):
        planted = "a" * 64
        client.cookies.set("rlhf_session", planted, domain="t.local")  # fixed by an attacker beforehand
        r = await sign_in(client, "olga")
        assert r.status_code == 200, r.text
        assert client.cookies.get("rlhf_session") not in (None, planted)
        attacker = httpx.AsyncClient(transport=client._transport, base_url="http://t",  # noqa: SLF001
                                     cookies={"rlhf_session": planted})
        async with attacker:
            problem(await attacker.get("/api/v1/whoami"), 401)


async def test_totp_enrolment_and_sign_in(db: Database, log: Log, keyring: Keyring) -> None:
    await make(log, keyring, "ada", "admin")
    start = await log.sequenced_size()
    async with running(log, keyring) as (_, client):
        r = await sign_in(client, "ada")
        assert r.status_code == 200 and r.json()["needs_totp_enrolment"] is True, r.text
        # signed in, but nothing beyond enrolment until a second factor is confirmed
        problem(await client.get("/api/v1/accounts"), 403, "second factor")
        assert (await client.get("/auth/session")).json()["needs_totp_enrolment"] is True
        h = {"X-CSRFToken": await csrf(client)}
        problem(await client.post("/auth/totp/confirm", data={"code": "123456"}, headers=h), 400, "pending")
        r = await client.post("/auth/totp/enroll", headers=h)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store", r.text
        secret, uri = r.json()["secret"], r.json()["otpauth_uri"]
        assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri and "ada" in uri
        totp = pyotp.TOTP(secret)
        wrong = f"{(int(totp.now()) + 1) % 1000000:06d}"
        problem(await client.post("/auth/totp/confirm", data={"code": wrong}, headers=h), 400, "not valid")
        r = await client.post("/auth/totp/confirm", data={"code": totp.now()}, headers=h)
        assert r.status_code == 200 and r.json() == {"totp_enrolled": True}, r.text
        assert (await client.get("/api/v1/accounts")).status_code == 200  # the same session, now complete
        problem(await client.post("/auth/totp/enroll", headers=h), 400, "already enrolled")
        await client.post("/auth/logout", headers={**JSON, **h})

        r = await sign_in(client, "ada")
        assert problem(r, 401, "second factor") and "totp_required" not in r.json()  # as a wrong password
        problem(await sign_in(client, "ada", totp=wrong), 401)
        problem(await sign_in(client, "ada", "bad password", totp=totp.now()), 401)
        code = totp.at(time.time() + totp.interval)  # the next step's code (this one confirmed enrolment)
        r = await sign_in(client, "ada", totp=code)
        assert r.status_code == 200 and r.json()["needs_totp_enrolment"] is False, r.text
        assert (await client.get("/api/v1/accounts")).status_code == 200
        async with httpx.AsyncClient(transport=client._transport, base_url="http://t") as thief:  # noqa: SLF001
            problem(await sign_in(thief, "ada", totp=code), 401)  # a code works once

    assert (await get_account(db, "ada")).totp_enrolled
    logged = await events(log, start)
    assert [e["kind"] for e in logged] == ["account.totp_enrolled"]
    ada = Actor.of_account(keyring.pseudonymizer, "ada", "admin")
    assert logged[0]["actor"] == logged[0]["subject"] == ada.pseudonym
    async with log.store.engine.connect() as conn:
        stored = (await conn.execute(sa.select(account_totp.c.secret))).scalar_one()
    blob = b"".join([await log.entry(i) for i in range(await log.sequenced_size())])
    import base64

    raw = base64.b32decode(secret)
    for leak in (secret.encode(), raw):
        assert leak not in bytes(stored) and leak not in blob


async def test_admin_resets_a_lost_factor(log: Log, keyring: Keyring) -> None:
    root = await bootstrap(log, keyring)
    await make(log, keyring, "ovid", "overseer")
    async with running(log, keyring) as (_, client):
        assert (await sign_in(client, "ovid")).json()["needs_totp_enrolment"] is True
        h = {"X-CSRFToken": await csrf(client)}
        totp = pyotp.TOTP((await client.post("/auth/totp/enroll", headers=h)).json()["secret"])
        r = await client.post("/auth/totp/confirm", data={"code": totp.now()}, headers=h)
        assert r.status_code == 200, r.text
        start = await log.sequenced_size()
        r = await client.delete("/api/v1/accounts/ovid/totp", headers=auth(root))
        assert r.status_code == 204, r.text
        again = await client.delete("/api/v1/accounts/ovid/totp", headers=auth(root))
        problem(again, 400, "no second factor")
        assert (await client.get("/auth/session")).json()["needs_totp_enrolment"] is True  # at once
        await client.post("/auth/logout", headers={**JSON, **h})
        r = await sign_in(client, "ovid")  # no code asked any more; enrolment again
        assert r.status_code == 200 and r.json()["needs_totp_enrolment"] is True, r.text
    [reset] = await events(log, start)
    assert reset["kind"] == "account.totp_reset"
    assert reset["subject"] == keyring.pseudonymizer.pseudonym("account:ovid")
    assert reset["actor"] == keyring.pseudonymizer.pseudonym("account:root")


async def test_operator_may_enrol_and_then_needs_the_code(log: Log, keyring: Keyring) -> None:
    await make(log, keyring, "olga", "operator")
    async with running(log, keyring) as (_, client):
        assert (await sign_in(client, "olga")).json()["needs_totp_enrolment"] is False
        h = {"X-CSRFToken": await csrf(client)}
        totp = pyotp.TOTP((await client.post("/auth/totp/enroll", headers=h)).json()["secret"])
        r = await client.post("/auth/totp/confirm", data={"code": totp.now()}, headers=h)
        assert r.status_code == 200, r.text
        await client.post("/auth/logout", headers={**JSON, **h})
        problem(await sign_in(client, "olga"), 401, "second factor")


async def test_sessions_expire(log: Log, keyring: Keyring) -> None:
    admin = await bootstrap(log, keyring)
    await make(log, keyring, "olga", "operator")
    async with running(log, keyring) as (app, client):
        r = await client.put("/api/v1/config", json={"session_idle_seconds": 1}, headers=auth(admin))
        assert r.status_code == 200, r.text
        assert (await sign_in(client, "olga")).status_code == 200
        assert (await client.get("/api/v1/whoami")).status_code == 200
        await asyncio.sleep(1.3)
        problem(await client.get("/api/v1/whoami"), 401)  # idle too long
        assert client.cookies.get("rlhf_session") in (None, "null")

        await client.put("/api/v1/config", json={"session_idle_seconds": 60, "session_max_seconds": 2},
                         headers=auth(admin))
        assert (await sign_in(client, "olga")).status_code == 200
        seen = []
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            seen.append((await client.get("/api/v1/whoami")).status_code)
            await asyncio.sleep(0.25)
        assert seen[0] == 200 and seen[-1] == 401  # used all along, still over at the absolute limit

        await client.put("/api/v1/config", json={"session_max_seconds": 3600}, headers=auth(admin))
        assert (await sign_in(client, "olga")).status_code == 200
        r = await client.patch("/api/v1/accounts/olga", json={"disabled": True}, headers=auth(admin))
        assert r.status_code == 200
        problem(await client.get("/api/v1/whoami"), 401)  # disabling ends sessions at once
        await client.patch("/api/v1/accounts/olga", json={"disabled": False}, headers=auth(admin))
        assert (await sign_in(client, "olga")).status_code == 200
        assert (await client.get("/api/v1/whoami")).status_code == 200
        r = await client.put("/api/v1/accounts/olga/password", json={"password": "changed at once"},
                             headers=auth(admin))
        assert r.status_code == 204, r.text
        problem(await client.get("/api/v1/whoami"), 401)  # so does a new password
        assert (await sign_in(client, "olga", "changed at once")).status_code == 200
        assert app.state.settings["session_max_seconds"] == 3600


async def test_redis_store_shares_sessions_between_servers(
    log: Log, keyring: Keyring, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import redis.asyncio as redis

    try:
        await redis.from_url(REDIS_URL).ping()
    except (redis.ConnectionError, OSError) as e:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis is required when CI=true: {e}")
        pytest.skip(f"no Redis at {REDIS_URL}: {e}")
    monkeypatch.setenv("RLHF_AUDIT_REDIS_URL", REDIS_URL)
    await make(log, keyring, "olga", "operator")
    async with running(log, keyring) as (_, one), running(log, keyring) as (_, two):
        assert (await sign_in(one, "olga")).status_code == 200
        session = one.cookies.get("rlhf_session")
        assert session
        stored = await redis.from_url(REDIS_URL).keys("*rlhf_audit_sessions*")
        assert any(session.encode() in k for k in stored), stored
        two.cookies.set("rlhf_session", session, domain="t.local")
        who = await two.get("/api/v1/whoami")  # another server process, the same store
        assert who.status_code == 200 and who.json()["account"] == "olga"
        await one.post("/auth/logout", headers={**JSON, "X-CSRFToken": await csrf(one)})
        problem(await two.get("/api/v1/whoami"), 401)

