"""Bounded JSON bodies on every route (issue 13, defect 7): one mechanism, ``app.core.json_body``.

Deep nesting (a RecursionError in a decoder was a 500) is a 400 and an oversized body a 413 on
every route that takes a body, before any decoder runs; NaN and Infinity are refused (400)
wherever JSON is read. Each refusal is a problem detail that says what was wrong, and nothing is
stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.json_body import MAX_BODY_BYTES, MAX_DEPTH, too_deep
from ledger.log import Log
from tests.support.accounts import auth as _auth
from tests.support.accounts import token as _token
from tests.support.asgi import serving
from tests.support.portal import accounts, csrf, enrolled, portal, sign_in

# Every route of the API that reads a JSON body before looking anything up (the report's five first).
BODY_ROUTES = [
    ("POST", "/api/v1/accounts"),
    ("PUT", "/api/v1/config"),
    ("PATCH", "/api/v1/accounts/alice"),
    ("PUT", "/api/v1/accounts/alice/password"),
    ("POST", "/api/v1/accounts/alice/tokens"),
    ("POST", "/api/v1/events"),
    ("POST", "/api/v1/jobs"),
    ("POST", "/api/v1/bundles"),
    ("POST", "/api/v1/reports"),
    ("POST", "/api/v1/incidents"),
    ("PUT", "/api/v1/datasets/ds_x/budget"),
    ("POST", "/api/v1/datasets/ds_x/versions"),
    ("POST", "/api/v1/privacy/erasures"),
    ("POST", "/api/v1/oversight/runs/run_x/halt"),
    ("POST", "/api/v1/oversight/models/model_x/veto"),
]

JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def admin(log: Log) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    token = await _token(log, "alice", "admin")
    async with serving(log) as client:
        yield client, _auth(token)


def _problem(r: httpx.Response, status: int, *words: str) -> None:
    assert r.status_code == status, (r.request.method, r.request.url.path, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    detail = str(r.json()["detail"])
    assert all(w in detail for w in words), detail


async def test_deep_nesting_is_400_on_every_route(admin: tuple[httpx.AsyncClient, dict[str, str]],
                                                  log: Log) -> None:
    client, auth = admin
    size = await log.sequenced_size()
    cases = [
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "application/json"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json"),
        (b'{"a":' * 50_000 + b"}" * 50_000, "application/json"),
        (b"[" * 100_000 + b"]" * 100_000, "text/plain"),  # Litestar decodes JSON whatever it says
    ]
    for body, ctype in cases:
        for method, path in BODY_ROUTES:
            r = await client.request(method, path, content=body, headers={**auth, "Content-Type": ctype})
            _problem(r, 400, f"nested more than {MAX_DEPTH}")
    # an unclosed one, and one behind a string that holds brackets
    for body in (b"[" * 100_000, b'["]]]]",' + b"[" * 100_000):
        _problem(await client.post("/api/v1/accounts", content=body, headers={**auth, **JSON}), 400, "nested")
    assert await log.sequenced_size() == size


async def test_nesting_up_to_the_limit_still_reaches_the_route(
        admin: tuple[httpx.AsyncClient, dict[str, str]], log: Log) -> None:
    """The deepest event the ledger takes (254 levels) is accepted; a batch's wrapper takes two."""
    client, auth = admin
    assert MAX_DEPTH == 254

    def event(levels: int) -> bytes:  # the event object and levels - 1 arrays
        return b'{"kind":"x","a":' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"

    for body in (event(254), b'{"events":[' + event(252) + b"]}"):
        r = await client.post("/api/v1/events", content=body, headers={**auth, **JSON})
        assert r.status_code == 201, r.text
    for body in (event(255), b'{"events":[' + event(253) + b"]}"):
        _problem(await client.post("/api/v1/events", content=body, headers={**auth, **JSON}), 400,
                 "nested more than 254")
    # brackets inside strings are not nesting
    text = b'{"kind":"x","s":"' + b"[" * 60_000 + b'","t":"\\"' + b"{" * 1000 + b'"}'
    r = await client.post("/api/v1/events", content=text, headers={**auth, **JSON})
    assert r.status_code == 201, r.text


async def test_oversized_bodies_are_413(admin: tuple[httpx.AsyncClient, dict[str, str]], log: Log) -> None:
    client, auth = admin
    size = await log.sequenced_size()
    big = b'{"kind":"x","s":"' + b"a" * MAX_BODY_BYTES + b'"}'
    for method, path in BODY_ROUTES[:6]:
        _problem(await client.request(method, path, content=big, headers={**auth, **JSON}), 413,
                 str(MAX_BODY_BYTES))

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"kind":"x","s":"'
        for _ in range(MAX_BODY_BYTES // 65536 + 1):
            yield b"a" * 65536
        yield b'"}'

    r = await client.post("/api/v1/events", content=chunks(), headers={**auth, **JSON})
    _problem(r, 413, str(MAX_BODY_BYTES))
    assert await log.sequenced_size() == size


async def test_nan_and_infinity_are_400(admin: tuple[httpx.AsyncClient, dict[str, str]], log: Log) -> None:
    client, auth = admin
    size = await log.sequenced_size()
    bodies = {
        "/api/v1/accounts": ("POST", b'{"name":"bob","role":"operator","password":%s}'),
        "/api/v1/config": ("PUT", b'{"integration_interval":%s}'),
        "/api/v1/accounts/alice/tokens": ("POST", b'{"expires_in_days":%s}'),
        "/api/v1/events": ("POST", b'{"kind":"x","a":%s}'),
        "/api/v1/datasets/ds_x/budget": ("PUT", b'{"epsilon_total":%s,"delta":1e-5}'),
        "/api/v1/jobs": ("POST", b'{"kind":"dpo","base_model":"m","dataset":"ds_x","dataset_version":1,'
                                 b'"learning_rate":%s}'),
        "/api/v1/reports": ("POST", b'{"kind":"time","since":%s}'),
    }
    for path, (method, template) in bodies.items():
        for literal in (b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"):
            r = await client.request(method, path, content=template % literal, headers={**auth, **JSON})
            assert r.status_code == 400, (path, literal, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
    assert await log.sequenced_size() == size


async def test_portal_json_fields_are_bounded_too(sqlite_log: Log, tmp_path: Path) -> None:
    """Forms are not scanned (urlencoded text has no brackets to count): the portal parses its JSON
    fields (a job spec, a setting's value) with the same strict parser as the API."""
    keys = tmp_path / "keys"
    await accounts(sqlite_log, keys, boss="admin", op="operator")
    size = await sqlite_log.sequenced_size()
    async with portal(sqlite_log, keys) as client:
        await sign_in(client, "op")
        for spec in ("[" * 100_000 + "]" * 100_000, '{"kind":"dpo","learning_rate":NaN}', "[Infinity]"):
            r = await client.post("/runs", data={"spec": spec, "_csrf_token": csrf(client)})
            assert r.status_code == 400 and "text/html" in r.headers["content-type"], r.text[-2000:]
            assert "the spec is not JSON" in r.text
    async with portal(sqlite_log, keys) as client:
        await enrolled(client, "boss")
        size = await sqlite_log.sequenced_size()
        for value in ("NaN", "-Infinity", "[" * 100_000):
            r = await client.post("/admin/setting", data={"key": "session_idle_seconds", "value": value,
                                                          "_csrf_token": csrf(client)})
            assert r.status_code == 400 and 'id="admin-error"' in r.text, r.text[-2000:]
        deep = "a=" + "%5B" * 100_000  # a form is parsed without recursion: no limit on its text
        r = await client.post("/admin/setting", content=deep, headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-CSRFToken": csrf(client)})
        assert r.status_code < 500, r.text[-2000:]
    assert await sqlite_log.sequenced_size() == size


def _depth(text: bytes) -> int:
    """How deep a decoder reading ``text`` goes, one byte at a time: the reference for too_deep."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (byte == 0x5C, byte != 0x22)
        elif byte == 0x5C:
            break  # a decoder stops at this error
        elif byte == 0x22:
            in_string = True
        elif byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth -= 1
    return deepest


_TRICKY = st.text(alphabet='[]{}"\\,a\u00e9', max_size=8)
_JSON = st.recursive(st.none() | st.integers(-(2**53), 2**53) | _TRICKY,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TRICKY, inner, max_size=3),
                     max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(_JSON, st.integers(min_value=1, max_value=6))
def test_too_deep_measures_what_a_decoder_would(value: object, limit: int) -> None:
    text = orjson.dumps(value)
    assert too_deep(text, limit) == (_depth(text) > limit)
    lines = b"\n".join([text] * 3)  # JSON Lines: each line starts again from the top
    assert too_deep(lines, limit) == (_depth(text) > limit)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300).map(lambda b: bytes(b"[]{}\"\\,a"[x % 8] for x in b)), st.integers(1, 6))
def test_too_deep_never_lets_deeper_text_through(text: bytes, limit: int) -> None:
    """On any text at all it may refuse more than a decoder would reach (text that is invalid
    anyway), never less."""
    if _depth(text) > limit:
        assert too_deep(text, limit)
