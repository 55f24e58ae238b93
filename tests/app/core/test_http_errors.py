"""Error answers of the server on SQLite and PostgreSQL: what a client sends wrong is a 4xx that
says so, what fails inside is a 5xx that says nothing of SQL, parameters or the driver (the detail
goes to the server log under the request id), and neither is mistaken for the other by monitoring.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

from app.accounts import MAX_TOKEN_DAYS, AccountError, create_account, create_token
from app.core.database import Database
from app.core.keyring import Keyring
from app.core.params import MAX_INT
from app.server.core import create_app
from ledger.log import Log
from tests.support.cli_run import cli, cli_env
from tests.support.databases import database_of
from tests.support.portal import accounts, csrf, enrolled, portal

# What no answer may carry: SQL, bound parameters, driver or library names, tracebacks.
INTERNAL = re.compile(r"\bSELECT\b|\bINSERT INTO\b|\bUPDATE \w+ SET\b|\[SQL:|\[parameters:|psycopg|"
                      r"sqlalchemy|sqlite3|aiosqlite|Traceback|OverflowError|DataError|\bFROM \w+ WHERE\b")
PASSWORD = "portal-password-1"
JSON = {"Accept": "application/json"}


def clean(r: httpx.Response, *statuses: int) -> None:
    assert r.status_code in statuses, (r.status_code, r.text[:500])
    assert not INTERNAL.search(r.text), r.text[:1000]


def server_errors(metrics_text: str) -> list[str]:
    """The request-histogram series that counted a 5xx answer."""
    return [line for line in metrics_text.splitlines()
            if line.startswith("rlhf_audit_http_request_duration_seconds_count") and 'status="5' in line]


async def test_nul_in_text_is_a_client_error_without_internal_text(db: Database, log: Log,
                                                                   tmp_path: Path) -> None:
    """Defect 4: PostgreSQL cannot store NUL; a NUL from a client is the client's 400 (or a 404
    where SQLite looks and finds nothing), never a 503 that carries the SQL, nor an outage to
    monitoring."""
    keys = tmp_path / "keys"
    pz = Keyring(keys).pseudonymizer
    await create_account(db, log, "root", "admin", PASSWORD, pseudonymizer=pz)
    token = (await create_token(db, log, "root", None, pseudonymizer=pz)).token
    bearer = {"Authorization": f"Bearer {token}", **JSON}
    sequenced = await log.sequenced_size()
    async with portal(log, keys) as client:
        await client.get("/login")  # the CSRF cookie: sign-in is checked even when signed out
        r = await client.post("/auth/login", headers=JSON, data={
            "username": "a\x00b", "password": PASSWORD, "_csrf_token": csrf(client)})
        clean(r, 400, 401, 303)
        for path in ("/api/v1/jobs/%00", "/api/v1/oversight/decisions?run=%00", "/api/v1/accounts/a%00b",
                     "/api/v1/events?run=a%00b", "/api/v1/datasets/a%00b"):
            clean(await client.get(path, headers=bearer), 400, 404)
        r = await client.post("/api/v1/oversight/models/%00/veto", headers=bearer,
                              json={"justification": "no"})
        clean(r, 400, 404, 409)
        r = await client.post("/api/v1/accounts", headers=bearer,
                              json={"name": "olga", "role": "auditor", "password": "pass\x00word-123"})
        clean(r, 201, 400)
        assert not server_errors((await client.get("/metrics")).text)
        assert (await client.get("/readyz")).status_code == 200
    if r.status_code == 400:
        assert await log.sequenced_size() == sequenced  # a refusal leaves nothing behind


async def test_a_storage_failure_answers_503_without_its_text(
        db: Database, log: Log, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A real database failure (a table gone) is a 503 whose body names no SQL or driver; the server
    log has the detail under the request id the answer carries."""
    keys = tmp_path / "keys"
    pz = Keyring(keys).pseudonymizer
    await create_account(db, log, "root", "admin", PASSWORD, pseudonymizer=pz)
    token = (await create_token(db, log, "root", None, pseudonymizer=pz)).token
    async with portal(log, keys) as client:
        async with log.store.engine.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE jobs RENAME TO jobs_gone"))
        with caplog.at_level(logging.WARNING):
            r = await client.get("/api/v1/jobs/run-1", headers={"Authorization": f"Bearer {token}", **JSON,
                                                                "X-Request-ID": "req-jobs-gone"})
        clean(r, 503)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["request_id"] == r.headers["x-request-id"] == "req-jobs-gone"
        logged = [rec for rec in caplog.records if "req-jobs-gone" in rec.getMessage()]
        assert logged and "jobs" in logged[0].getMessage(), [rec.getMessage() for rec in caplog.records]
        page = await client.get("/runs/run-1")  # the portal's page for the same failure: no SQL either
        assert not INTERNAL.search(page.text), page.text[-2000:]


async def test_out_of_range_numbers_are_4xx(db: Database, log: Log, tmp_path: Path) -> None:
    """Defect 6: tile indices no log can reach and integers beyond 64 bits in paths are 4xx."""
    keys = tmp_path / "keys"
    pz = Keyring(keys).pseudonymizer
    await create_account(db, log, "root", "admin", PASSWORD, pseudonymizer=pz)
    created = await create_token(db, log, 'root', None, pseudonymizer=pz)
    bearer = {"Authorization": f"Bearer {created.token}", **JSON}
    async with portal(log, keys) as client:
        for tile in ("0/x009/x223/x372/x036/x854/x775/808", "0/x036/x028/x797/x018/x963/968",
                     "entries/x009/x223/x372/x036/x854/x775/808", "7/001", "8/000.p/1",
                     "0/" + "x999/" * 40 + "999", "0/" + "x999/" * 2000 + "999"):
            clean(await client.get(f"/log/tile/{tile}"), 404)
        clean(await client.get("/static/" + "x999/" * 1500 + "999"), 404)  # a name the OS refuses
        assert (await client.get("/static/portal.css")).status_code == 200
        for number in (MAX_INT + 1, 2**64, -(2**63) - 1, -1):
            clean(await client.post(f"/api/v1/oversight/datasets/D/{number}/reject", headers=bearer,
                                    json={"justification": "out of range"}), 400, 404)
            for path in (f"/log/v1/proof/{number}", f"/api/v1/events/{number}", f"/explorer/entries/{number}",
                         f"/log/v1/get-entries?start={number}&end=1", f"/explorer?after={number}",
                         f"/runs/r1?recorded={number}", f"/reports?frozen={number}"):
                clean(await client.get(path, headers=bearer), 400, 401, 404)
        assert not server_errors((await client.get("/metrics")).text)


async def test_refusals_in_middleware_count_as_what_they_answer(sqlite_log: Log, tmp_path: Path) -> None:
    """A refusal raised before the handler (a missing CSRF token, a NUL in the URL) is counted in the
    request metrics with the status the client got, not as a 500 that pages someone."""
    async with portal(sqlite_log, tmp_path / "keys") as client:
        r = await client.post("/auth/login", headers=JSON, data={"username": "x", "password": "y"})
        clean(r, 403)
        clean(await client.get("/api/v1/accounts/a%00b", headers=JSON), 400)
        clean(await client.get("/explorer?kind=a%00b", headers=JSON), 400)
        figures = (await client.get("/metrics")).text
        assert 'route="/auth/login",status="403"' in figures and 'status="400"' in figures, figures
        assert not server_errors(figures)


def test_every_integer_parameter_is_bounded_to_64_bits() -> None:
    """Defect 6, for routes added later: every int path or query parameter of every route (API and
    portal) refuses what a 64-bit database column cannot hold, before any handler runs."""
    app = create_app()
    unbounded = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            assert isinstance(handler, HTTPRouteHandler)
            for name, field in handler.parsed_fn_signature.parameters.items():
                types = [field, *field.inner_types]
                if not any(t.is_subclass_of(int) and not t.is_subclass_of(bool) for t in types):
                    continue
                kwarg = field.kwarg_definition
                le, ge = getattr(kwarg, "le", None), getattr(kwarg, "ge", None)
                if le is None or le > MAX_INT or ge is None or ge < -(2**63):
                    unbounded.append(f"{handler.handler_name}({name}) at {route.path}")
    assert not unbounded, unbounded


@pytest.mark.parametrize("days", ["inf", "-inf", "nan", "1e10", "1e308", "99999999999", "-1", "3651"])
async def test_token_expiry_out_of_range_is_a_form_error(sqlite_log: Log, tmp_path: Path, days: str) -> None:
    """Defect 8: the portal's token form, like the API, takes 0 < days <= 3650 and says so."""
    keys = tmp_path / "keys"
    await accounts(sqlite_log, keys, boss="admin")
    await create_account(database_of(sqlite_log), sqlite_log, "svc", "service", None,
                         pseudonymizer=Keyring(keys).pseudonymizer)
    async with portal(sqlite_log, keys) as client:
        await enrolled(client, "boss")
        form = {"name": "svc", "scopes": "read", "_csrf_token": csrf(client)}
        r = await client.post("/admin/create_token", data={**form, "expires_days": days})
        assert r.status_code == 400 and 'id="admin-error"' in r.text, r.text[-2000:]
        assert "3650" in r.text and not INTERNAL.search(r.text)
        number = {"inf": "1e999", "-inf": "-1e999", "nan": "NaN"}.get(days, days)  # as JSON has them
        r = await client.post("/api/v1/accounts/svc/tokens", content=f'{{"expires_in_days": {number}}}',
                              headers={"X-CSRFToken": csrf(client), "Content-Type": "application/json"})
        clean(r, 400)
        made = await client.post("/admin/create_token", data={**form, "expires_days": "3650"})
        assert made.status_code == 303  # POST-redirect-GET: the secret is shown once, on the next page
        made = await client.get(made.headers["location"])
        assert made.status_code == 200 and 'id="new-token"' in made.text, made.text[-2000:]


async def test_every_entrance_bounds_a_token_lifetime(sqlite_log: Log, tmp_path: Path) -> None:
    """Defect 8, the same rule behind the portal: the service refuses more than MAX_TOKEN_DAYS and
    the CLI says so instead of an internal OverflowError."""
    pz = Keyring(tmp_path / "keys").pseudonymizer
    db = database_of(sqlite_log)
    await create_account(db, sqlite_log, "svc", "service", None, pseudonymizer=pz)
    with pytest.raises(AccountError, match=str(MAX_TOKEN_DAYS)):
        await create_token(db, sqlite_log, "svc", ["read"], timedelta(days=MAX_TOKEN_DAYS + 1),
                           pseudonymizer=pz)
    env = cli_env(tmp_path / "home")
    cli(env, "init")
    cli(env, "users", "create", "svc", "--role", "service")
    for days in ("1e10", "inf", "99999999999"):
        refused = cli(env, "tokens", "create", "svc", "--scope", "read", "--expires-in", days, ok=False)
        assert b"3650" in refused.stderr and b"internal error" not in refused.stderr, refused.stderr

