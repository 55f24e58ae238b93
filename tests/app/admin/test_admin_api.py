"""The administration API (accounts, tokens, run-time configuration) on a real log, SQLite and
PostgreSQL: what an admin can do, what a bad body gets, and what lands on the log."""

from __future__ import annotations

import asyncio

from app.accounts import authenticate_token, verify_password
from app.core.database import Database
from app.core.keyring import Keyring
from ledger.log import Log
from tests.support.accounts import PASSWORD, auth, bootstrap, problem
from tests.support.asgi import running
from tests.support.log_reading import events


async def test_admin_manages_accounts_and_tokens(db: Database, log: Log, keyring: Keyring) -> None:
    pz = keyring.pseudonymizer
    admin = await bootstrap(log, keyring)
    start = await log.sequenced_size()
    async with running(log, keyring) as (_, client):
        h = auth(admin)
        r = await client.post("/api/v1/accounts", json={"name": "olga", "role": "operator",
                                                        "password": PASSWORD}, headers=h)
        assert r.status_code == 201, r.text
        assert r.json() | {"created_at": None} == {"name": "olga", "role": "operator", "disabled": False,
                                                   "has_password": True, "totp_enrolled": False,
                                                   "created_at": None}
        r = await client.post("/api/v1/accounts", json={"name": "svc", "role": "service"}, headers=h)
        assert r.status_code == 201, r.text
        r = await client.get("/api/v1/accounts", headers=h)
        assert [a["name"] for a in r.json()] == ["olga", "root", "svc"]
        for plain in (r, await client.get("/log/v1/keys"), await client.get("/healthz")):
            assert "set-cookie" not in plain.headers  # API and public answers stay cookie-free

        r = await client.post("/api/v1/accounts/svc/tokens", headers=h,
                              json={"scopes": ["events:write"], "expires_in_days": 1})
        assert r.status_code == 201 and r.headers["cache-control"] == "no-store", r.text
        made = r.json()
        assert made["token"].startswith("rat_" + made["prefix"]) and made["scopes"] == ["events:write"]
        assert made["expires_at"] is not None
        svc = made["token"]
        assert (await client.get("/api/v1/whoami", headers=auth(svc))).json()["account"] == "svc"
        listed = (await client.get("/api/v1/accounts/svc/tokens", headers=h)).json()
        assert [t["prefix"] for t in listed] == [made["prefix"]] and "token" not in listed[0]
        assert svc not in (await client.get("/api/v1/accounts/svc/tokens", headers=h)).text

        olga = (await client.post("/api/v1/accounts/olga/tokens", json={}, headers=h)).json()["token"]
        r = await client.patch("/api/v1/accounts/olga", json={"role": "overseer"}, headers=h)
        assert r.status_code == 200 and r.json()["role"] == "overseer", r.text
        who = (await client.get("/api/v1/whoami", headers=auth(olga))).json()
        assert who["role"] == "overseer" and "jobs:submit" not in who["scopes"]  # bounded by the new role

        assert (await client.patch("/api/v1/accounts/olga", json={"disabled": True}, headers=h)).json()[
            "disabled"]
        problem(await client.get("/api/v1/whoami", headers=auth(olga)), 401)
        await client.patch("/api/v1/accounts/olga", json={"disabled": False}, headers=h)
        assert (await client.get("/api/v1/whoami", headers=auth(olga))).status_code == 200

        r = await client.put("/api/v1/accounts/olga/password", json={"password": "a new long one"}, headers=h)
        assert r.status_code == 204, r.text
        assert await verify_password(db, "olga", "a new long one")

        r = await client.delete(f"/api/v1/accounts/svc/tokens/{made['prefix']}", headers=h)
        assert r.status_code == 204, r.text
        problem(await client.get("/api/v1/whoami", headers=auth(svc)), 401)
        assert await authenticate_token(db, svc) is None
        problem(await client.delete(f"/api/v1/accounts/svc/tokens/{made['prefix']}", headers=h), 400,
                "already revoked")
        problem(await client.delete(f"/api/v1/accounts/olga/tokens/{made['prefix']}", headers=h), 404)

    logged = await events(log, start)
    assert [e["kind"] for e in logged] == [
        "account.created", "account.created", "token.created", "token.created", "account.role_changed",
        "account.disabled", "account.enabled", "account.password_changed", "token.revoked"]
    root = pz.pseudonym("account:root")
    assert all(e["actor"] == root and e["role"] == "admin" for e in logged)
    olga_p, svc_p = pz.pseudonym("account:olga"), pz.pseudonym("account:svc")
    assert logged[0]["subject"] == olga_p and logged[0]["subject_role"] == "operator"
    assert logged[4] | {"at": ""} == {"kind": "account.role_changed", "v": 1, "at": "", "actor": root,
                                      "role": "admin", "subject": olga_p, "from_role": "operator",
                                      "to_role": "overseer"}
    assert logged[8]["subject"] == svc_p and logged[8]["prefix"] == made["prefix"]
    blob = b"".join([await log.entry(i) for i in range(await log.sequenced_size())])
    for secret in (b'"olga"', b'"svc"', b'"root"', PASSWORD.encode(), b"a new long one", svc.encode()):
        assert secret not in blob


async def test_bad_requests_are_problem_details(log: Log, keyring: Keyring) -> None:
    admin = await bootstrap(log, keyring)
    auditor = await bootstrap(log, keyring, "aud", "auditor")
    size = await log.sequenced_size()
    async with running(log, keyring) as (_, client):
        h = auth(admin)
        for body, words in [
            ({"name": "x", "role": "king", "password": PASSWORD}, ["role"]),
            ({"name": "x", "role": "operator", "password": "short"}, ["password"]),
            ({"name": "x", "role": "operator"}, ["needs a password"]),
            ({"name": "x", "role": "service", "password": PASSWORD}, ["no password"]),
            ({"name": "-x", "role": "auditor", "password": PASSWORD}, ["name"]),
            ({"name": "x", "role": "auditor", "password": PASSWORD, "admin": True}, ["admin"]),
            ({"role": "auditor"}, ["name"]),
            ({"name": "aud", "role": "auditor", "password": PASSWORD}, ["already exists"]),
        ]:
            problem(await client.post("/api/v1/accounts", json=body, headers=h), 400, *words)
        problem(await client.post("/api/v1/accounts", content=b"{nope", headers=h), 400)
        tokens = "/api/v1/accounts/aud/tokens"
        problem(await client.post(tokens, json={"scopes": ["events:write"]}, headers=h), 400, "may not hold")
        problem(await client.post(tokens, json={"scopes": ["all"]}, headers=h), 400)
        problem(await client.post(tokens, json={"expires_in_days": -1}, headers=h), 400)
        problem(await client.post("/api/v1/accounts/nobody/tokens", json={}, headers=h), 404, "nobody")
        problem(await client.patch("/api/v1/accounts/aud", json={}, headers=h), 400, "nothing to change")
        problem(await client.patch("/api/v1/accounts/aud", json={"role": "service"}, headers=h), 400)
        problem(await client.patch("/api/v1/accounts/root", json={"disabled": True}, headers=h), 400,
                "last enabled admin")
        problem(await client.patch("/api/v1/accounts/root", json={"role": "auditor"}, headers=h), 400,
                "last enabled admin")
        problem(await client.get("/api/v1/accounts/" + "x" * 65, headers=h), 400)
        problem(await client.get("/api/v1/accounts", headers=auth(auditor)), 403, "accounts:admin")
        problem(await client.get("/api/v1/accounts"), 401)
        problem(await client.put("/api/v1/config", json={"integration_interval": 1}, headers=auth(auditor)),
                403)
    assert await log.sequenced_size() == size  # nothing was recorded by a refused request


async def test_config_changes_are_applied_and_logged(log: Log, keyring: Keyring) -> None:
    admin = await bootstrap(log, keyring)
    start = await log.sequenced_size()
    async with running(log, keyring) as (app, client):
        h = auth(admin)
        config = (await client.get("/api/v1/config", headers=h)).json()
        assert config["integration_interval"] == log.interval == 0.05
        assert config["tsa_urls"] == ["local"] and config["alert_webhook_url"] is None
        r = await client.put("/api/v1/config", headers=h, json={
            "integration_interval": 0.2, "alert_webhook_url": "https://hooks.example/rlhf",
            "tsa_urls": ["local", "http://127.0.0.1:9/tsr"], "session_idle_seconds": 600})
        assert r.status_code == 200, r.text
        assert log.interval == 0.2  # applied to the running log
        assert [t.name for t in log.tsas][1] == "http://127.0.0.1:9/tsr"
        assert r.json()["session_idle_seconds"] == app.state.settings["session_idle_seconds"] == 600

        for body, words in [
            ({"integration_interval": 0}, ["integration_interval", "more than 0"]),
            ({"integration_interval": 61}, ["at most 60"]),
            ({"integration_interval": "fast"}, ["number"]),
            ({"alert_webhook_url": "ftp://x.example/"}, ["alert_webhook_url", "http"]),
            ({"tsa_urls": ["local", "local"]}, ["twice"]),
            ({"tsa_urls": "local"}, ["list"]),
            ({"session_max_seconds": 1.5}, ["whole number"]),
            ({"colour": "blue"}, ["unknown setting"]),
            ({"integration_interval": 1, "write_requests_per_minute": -5}, ["write_requests_per_minute"]),
            ({}, ["nothing to change"]),
        ]:
            problem(await client.put("/api/v1/config", json=body, headers=h), 400, *words)
        problem(await client.put("/api/v1/config", json=[1], headers=h), 400)
        assert log.interval == 0.2  # a refused batch changes nothing, not even its good part
        again = await client.put("/api/v1/config", json={"integration_interval": 0.2}, headers=h)
        assert again.status_code == 200  # no change, no event

    changes = [e for e in await events(log, start) if e["kind"] == "config.changed"]
    assert {e["key"]: (e.get("from"), e["to"]) for e in changes} == {
        "integration_interval": (0.05, 0.2),
        "alert_webhook_url": (None, "https://hooks.example/rlhf"),
        "tsa_urls": (["local"], ["local", "http://127.0.0.1:9/tsr"]),
        "session_idle_seconds": (1800, 600),
    }
    root = keyring.pseudonymizer.pseudonym("account:root")
    assert all(e["actor"] == root and e["role"] == "admin" for e in changes)

    log.interval = 0.05  # as a fresh process would start from the home's config
    async with running(log, keyring) as (app, client):
        assert log.interval == 0.2  # the stored settings are applied at startup
        assert app.state.settings["alert_webhook_url"] == "https://hooks.example/rlhf"


async def test_openapi_documents_the_bodies(log: Log, keyring: Keyring) -> None:
    async with running(log, keyring) as (_, client):
        schema = (await client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    for path in ("/api/v1/accounts", "/api/v1/accounts/{name}", "/api/v1/accounts/{name}/tokens",
                 "/api/v1/config", "/auth/login", "/auth/totp/confirm"):
        assert path in paths, sorted(paths)
    components = schema["components"]["schemas"]
    assert {"NewAccount", "AccountChange", "NewToken", "CreatedTokenOut", "LoginForm"} <= set(components)
    assert set(components["NewAccount"]["properties"]) == {"name", "role", "password"}


async def test_other_processes_pick_up_changes(db: Database, log: Log) -> None:
    """Two servers on one database: a change through one reaches the other within its refresh."""
    from app.config.runtime import RuntimeSettings, change, kept_fresh
    from app.events.recording import SYSTEM

    here, there = RuntimeSettings(db, log), RuntimeSettings(db, log)
    async with kept_fresh(there, every=0.05):
        assert await change(here, "write_requests_per_minute", 77, by=SYSTEM)
        assert not await change(here, "write_requests_per_minute", 77, by=SYSTEM)  # already so
        for _ in range(100):
            if there["write_requests_per_minute"] == 77:
                break
            await asyncio.sleep(0.05)
        assert there["write_requests_per_minute"] == 77
    kinds = [e["kind"] for e in await events(log)]
    assert kinds.count("config.changed") == 1
