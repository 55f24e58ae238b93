"""Fuzzing the HTTP server: whatever comes in, nothing answers 5xx or shows its insides.

Two passes against the real server (``rlhf-audit serve`` in a subprocess) holding a few entries:

- property-based, from the server's own OpenAPI schema (schemathesis), on SQLite;
- deterministic, on SQLite and PostgreSQL: every route of the app (the API, the public log and
  the portal's pages and forms, whether in the schema or not) gets the inputs attackers send:
  integers beyond 64 bits and negative in paths, queries and bodies, NUL, invalid UTF-8 and lone
  surrogates, 100,000 levels of nesting, duplicate keys, NaN and Infinity, 10 MB bodies and wrong
  content types; anonymously, with an admin's API token and in an admin's portal session.

Every answer must be below 500 and carry no SQL, bound parameters, driver names or traceback.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyotp
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from litestar.routes import HTTPRoute

from tests.support.cli_run import wait_until_serving
from tests.support.postgres import PG_ADMIN_URL
from tests.support.postgres import pg_admin as _pg_admin

pytestmark = pytest.mark.slow

PASSWORD = "fuzz-admin-password-1"
INTERNAL = re.compile(r"\bSELECT\b|\bINSERT INTO\b|\bUPDATE \w+ SET\b|\[SQL:|\[parameters:|psycopg|"
                      r"sqlalchemy|sqlite3|aiosqlite|Traceback \(most recent|OverflowError|"
                      r"RecursionError|DataError|\bFROM \w+ WHERE\b")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base: str
    token: str  # an admin's API token
    stderr: Path

    def tail(self) -> str:
        return self.stderr.read_text(errors="replace")[-3000:]


def _cli(home: str, env: dict[str, str], *args: str, stdin: bytes = b"") -> str:
    done = subprocess.run([sys.executable, "-m", "app.cli", "--home", home, *args], input=stdin, env=env,
                          check=True, capture_output=True, timeout=120)
    return done.stdout.decode()


def _serve(tmp: Path, database_url: str | None) -> Iterator[Server]:
    """A home with 300 entries and an admin (password and token), served on a free port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_AUDIT_")}
    if database_url:
        env["RLHF_AUDIT_DATABASE_URL"] = database_url
    home, port = str(tmp / "home"), _free_port()
    base = f"http://127.0.0.1:{port}"
    _cli(home, env, "init")
    _cli(home, env, "append", stdin=b"".join(b'{"kind":"fuzz.seed","i":%d}\n' % i for i in range(300)))
    _cli(home, env, "users", "create", "root", "--role", "admin", "--password-stdin",
         stdin=PASSWORD.encode() + b"\n")
    token = _cli(home, env, "tokens", "create", "root").strip()
    stderr = tmp / "serve.log"
    with stderr.open("wb") as err:
        server = subprocess.Popen([sys.executable, "-m", "app.cli", "--home", home, "serve", "--port",
                                   str(port)], env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_until_serving(base, server, stderr, path="/healthz")
        yield Server(base, token, stderr)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve(tmp_path_factory.mktemp("fuzz-sqlite"), None)


@pytest.fixture(scope="module")
def postgresql_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    name = f"rlhf_fuzz_{secrets.token_hex(6)}"
    with _pg_admin() as admin:  # skips without PostgreSQL, fails when CI=true
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield from _serve(tmp_path_factory.mktemp("fuzz-pg"), f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_no_input_gets_a_server_error(sqlite_server: Server) -> None:
    # Each operation's hypothesis strategy, driven directly: schemathesis' pytest plugin does
    # not run under pytest 9 yet.
    api_schema = schemathesis.openapi.from_url(f"{sqlite_server.base}/schema/openapi.json")
    failures: list[str] = []
    calls = 0
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {"/log/v1/get-proof-by-hash", "/api/v1/events"} <= {op.path for op in operations}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def fuzz(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            response = case.call(timeout=30)
            if response.status_code >= 500 or INTERNAL.search(response.text):
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                f"{response.text[:200]}")

        fuzz()
    assert calls >= 5 * len(operations)  # the fuzzer really ran
    assert not failures, "\n".join(failures[:10])


# --- the deterministic pass ------------------------------------------------------------------

INT_SEGMENTS = ["9223372036854775808", "18446744073709551616", "-9223372036854775809", "-1", "1e308", "NaN"]
TEXT_SEGMENTS = ["a%00b", "%ff%fe", "%ed%a0%80", "x" * 3000, "9223372036854775808"]
PATH_SEGMENTS = ["0/x009/x223/x372/x036/x854/x775/808", "0/" + "x999/" * 1500 + "999", "entries/%00",
                 "..%2f..%2fsettings.toml", "%ff/%fe"]
QUERY_VALUES = ["a%00b", "%ff%fe", "9223372036854775808", "-9223372036854775809", "1e308", "NaN"]
# Values for fields, as JSON text: numbers beyond 64 bits and doubles, NaN/Infinity, NUL, a lone
# surrogate, the wrong type. Each body sets every field to one of them, or the fields of one kind.
JSON_VALUES = ["18446744073709551616", "-9223372036854775809", "1e400", "NaN", "-Infinity", '"a\\u0000b"',
               '"\\ud800"', '{"a": [1]}']
FIELDS = {  # what the handlers read, with plausible values, so a mutation gets past the others
    "kind": '"fuzz.event"', "justification": '"fuzzing"', "name": '"fuzz-account"', "role": '"auditor"',
    "password": '"fuzz-password-2"', "scopes": '["read"]', "expires_in_days": "1", "disabled": "false",
    "to_checkpoint": '"ckpt-1"', "run": '"fuzz-run"', "model": '"fuzz-model"', "dataset": '"fuzz-ds"',
    "dataset_version": "1", "version": "1", "epsilon_total": "1.0", "delta": "1e-5", "subject": '"s-1"',
    "code": '"123456"', "title": '"t"', "severity": '"low"', "spec": '{"kind": "sft"}', "format": '"json"',
    "session_idle_seconds": "600", "i": "1",
}
TEXT_FIELDS = ("kind", "justification", "name", "run", "model", "dataset", "password", "subject")
NUMBER_FIELDS = ("expires_in_days", "dataset_version", "version", "epsilon_total", "delta", "i",
                 "session_idle_seconds")
FORM_FIELDS = {"name": "fuzz-account", "role": "auditor", "password": "fuzz-password-2", "scopes": "read",
               "expires_days": "1", "prefix": "abcdefgh", "dataset": "fuzz-ds", "dataset_version": "1",
               "epsilon_total": "1", "delta": "1e-5", "key": "session_idle_seconds", "value": "600",
               "justification": "fuzzing", "confirm": "yes", "run": "fuzz-run", "model": "fuzz-model",
               "to_checkpoint": "ckpt-1", "annotator": "ann-1", "spec": '{"kind": "sft"}', "code": "123456",
               "username": "fuzz-account", "totp": "123456", "next": "/", "since": "2024-01-01",
               "until": "2024-01-02", "format": "json", "title": "t", "severity": "low", "incident": "inc-1"}
FORM_NUMBERS = ("expires_days", "epsilon_total", "delta", "dataset_version", "value")
TEN_MB = b"[" + b"1," * (5 * 1024 * 1024) + b"1]"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
PUBLIC = ("/log/", "/auth/", "/login", "/healthz", "/readyz", "/metrics", "/schema", "/static/")


def _json(fields: dict[str, str]) -> bytes:
    return ("{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}").encode()


def _form(fields: dict[str, str]) -> bytes:
    """A urlencoded body; values are already %-escaped where they mean to be."""
    return "&".join(f"{k}={v}" for k, v in fields.items()).encode()


JSON_BODIES: list[bytes] = [
    *(_json(dict.fromkeys(FIELDS, value)) for value in JSON_VALUES),
    *(_json({**FIELDS, **dict.fromkeys(TEXT_FIELDS, value)}) for value in ('"a\\u0000b"', '"\\ud800"')),
    *(_json({**FIELDS, **dict.fromkeys(NUMBER_FIELDS, value)})
      for value in ("9223372036854775808", "-9223372036854775809", "1e400", "NaN", "Infinity")),
    _json({**FIELDS, "justification": '"' + "x" * 100_000 + '"', "name": "[" * 50_000 + "]" * 50_000}),
    b"[" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000,  # nesting: unbalanced and balanced
    _json(FIELDS)[:-1] + b',"kind":"oversight.decision","name":"root","role":"admin"}',  # duplicate keys
    b'{"kind":"fuzz.event","name":"\xff\xfe\xc3\x28","justification":"\xed\xa0\x80"}',  # invalid UTF-8
    b"\xef\xbb\xbf" + _json(FIELDS), b"", b"{", b"[]", b"1e999",
]
FORM_BODIES: list[bytes] = [
    *(_form(dict.fromkeys(FORM_FIELDS, value)) for value in ("a%00b", "%ff%fe", "1e308", "-inf")),
    *(_form({**FORM_FIELDS, **dict.fromkeys(FORM_NUMBERS, value)})
      for value in ("inf", "nan", "1e10", "99999999999", "-9223372036854775809")),
    _form({**FORM_FIELDS, "name": "x" * 100_000}) + b"&name=a&name=b",  # long, and a duplicate
    b"name=\xff\xfe&username=\xc3\x28&justification=%ed%a0%80", b"%&=&=",
]
CONTENT_TYPES = ["text/plain", "multipart/form-data; boundary=zz", "application/json; charset=utf-16", None]


def _routes() -> list[tuple[str, str]]:
    """Every (method, path template) the app serves, from its own route table."""
    from app.server.core import create_app

    app = create_app()
    return sorted({(method, route.path) for route in app.routes if isinstance(route, HTTPRoute)
                   for method in route.methods if method not in ("HEAD", "OPTIONS")})


def _plain(name: str, kind: str) -> list[str]:
    """Ordinary values for a path parameter: the real action names where the route has them."""
    from app.portal.oversight import ACTIONS

    if name == "what":
        return ["create_account", "set_role", "disable", "create_token", "revoke_token", "set_budget",
                "setting"]
    if name == "action":
        return list(ACTIONS)
    return {"int": ["1"], "path": ["0/000"]}.get(kind, ["fuzz-name"])


def _paths(template: str) -> list[str]:
    """The template with each parameter in turn set to every hostile value (the others plain),
    and every combination of plain values once."""
    params = re.findall(r"\{(\w+):(\w+)\}", template)

    def fill(values: dict[str, str]) -> str:
        return re.sub(r"\{(\w+):\w+\}", lambda m: values[m.group(1)], template)

    plain = {name: _plain(name, kind)[0] for name, kind in params}
    paths = [fill({**plain, name: value}) for name, kind in params for value in _plain(name, kind)]
    for name, kind in params:
        hostile = {"int": INT_SEGMENTS, "path": PATH_SEGMENTS}.get(kind, TEXT_SEGMENTS)
        paths += [fill({**plain, name: value}) for value in hostile]
    return paths or [template]


def _requests(method: str, template: str, query: list[str]) -> Iterator[tuple[str, bytes | None, str | None]]:
    """(path and query, body, content type) for one route."""
    paths = _paths(template)
    for path in paths:
        yield path, None, None
    base = paths[0]
    for name in query:
        for value in QUERY_VALUES:
            yield f"{base}?{name}={value}", None, None
    if method in UNSAFE:
        for body in JSON_BODIES:
            yield base, body, "application/json"
        for body in FORM_BODIES:
            yield base, body, "application/x-www-form-urlencoded"
        for content_type in CONTENT_TYPES:
            yield base, _json(FIELDS), content_type


@dataclass
class Identity:
    name: str
    client: httpx.Client
    headers: dict[str, str]


def _identities(server: Server) -> dict[str, Identity]:
    """Anonymous (with a CSRF cookie, so sign-in is reached), an admin's token, an admin's portal
    session (second factor enrolled)."""
    anonymous = httpx.Client(base_url=server.base, timeout=60)
    anonymous.get("/login")
    anon_csrf = {"X-CSRFToken": anonymous.cookies["csrftoken"]}
    token = httpx.Client(base_url=server.base, timeout=60)
    session = httpx.Client(base_url=server.base, timeout=60)
    session.get("/login")
    csrf = session.cookies["csrftoken"]
    signed = session.post("/auth/login", data={"username": "root", "password": PASSWORD, "next": "/",
                                               "_csrf_token": csrf})
    assert signed.status_code == 303, signed.text
    enrol = session.post("/account/totp", data={"_csrf_token": csrf})
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', enrol.text)
    assert secret, enrol.text[-2000:]
    done = session.post("/account/totp/confirm", data={"code": pyotp.TOTP(secret.group(1)).now(),
                                                       "_csrf_token": csrf})
    assert done.status_code == 303, done.text
    return {"anonymous": Identity("anonymous", anonymous, anon_csrf),
            "token": Identity("token", token, {"Authorization": f"Bearer {server.token}"}),
            "session": Identity("session", session, {"X-CSRFToken": csrf, "Accept": "text/html"})}


# The session's own exits: fuzzed last, so the session holds for everything else.
LAST = {("POST", "/auth/logout"), ("POST", "/account/totp"), ("POST", "/auth/totp/enroll")}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_hostile_input_on_every_route_gets_a_clean_4xx(backend: str, request: pytest.FixtureRequest) -> None:
    """The issue's classes of input on every route, as every kind of caller, on both databases."""
    server: Server = request.getfixturevalue(f"{backend}_server")
    schema = httpx.get(f"{server.base}/schema/openapi.json").json()
    routes = _routes()
    in_schema = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    assert in_schema <= {(m, re.sub(r"\{(\w+):\w+\}", r"{\1}", p)) for m, p in routes}, "a route is missing"
    queries = {(m.upper(), p): [x["name"] for x in op.get("parameters", []) if x["in"] == "query"]
               for p, ops in schema["paths"].items() for m, op in ops.items()}
    who = _identities(server)
    failures: list[str] = []
    sent = 0
    for method, template in sorted(routes, key=lambda r: r in LAST):
        query = queries.get((method, re.sub(r"\{(\w+):\w+\}", r"{\1}", template)), [])
        api = template.startswith(("/api/", "/log/", "/auth/"))
        callers = [who["anonymous"], who["token"] if api else who["session"]]
        for n, (path, body, content_type) in enumerate(_requests(method, template, query)):
            # signed out, a private route answers 401 (or the sign-in page) to anything: its
            # handler is reached only by the signed-in caller, after the path variants
            public = template.startswith(PUBLIC) or n < len(_paths(template))
            for caller in callers if public else callers[1:]:
                headers = {**caller.headers, **({"Content-Type": content_type} if content_type else {})}
                r = caller.client.request(method, path, content=body, headers=headers)
                sent += 1
                if r.status_code >= 500 or INTERNAL.search(r.text):
                    failures.append(f"{caller.name} {method} {path[:120]} {(body or b'')[:80]!r} "
                                    f"{content_type} -> {r.status_code}: {r.text[:300]}")
        if method in UNSAFE:  # one 10 MB body per route, from the caller that gets furthest
            r = callers[1].client.request(method, _paths(template)[0], content=TEN_MB,
                                          headers={**callers[1].headers, "Content-Type": "application/json"})
            sent += 1
            if r.status_code >= 500 or INTERNAL.search(r.text):
                failures.append(f"{method} {template} 10 MB -> {r.status_code}: {r.text[:300]}")
    assert httpx.get(f"{server.base}/readyz").status_code == 200
    assert sent > 20 * len(routes)  # the pass really ran
    assert not failures, f"{len(failures)} of {sent}:\n" + "\n".join(failures[:40]) + "\n" + server.tail()
