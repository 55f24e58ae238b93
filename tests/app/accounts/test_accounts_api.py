"""Accounts, API tokens and the authenticated API (``/api/v1/``) on a real log, SQLite and PostgreSQL.

Apps run with their lifespan on the test's loop through ``tests.support.asgi.serving`` (httpx over
ASGI), never Litestar's AsyncTestClient.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from app.accounts import (
    AccountError,
    UnknownAccount,
    authenticate_token,
    create_account,
    create_token,
    revoke_token,
    set_password,
    verify_password,
)
from app.accounts.service import TOKEN_CACHE_SECONDS
from app.core.database import Database, open_home
from app.events.recording import SYSTEM, Actor
from ledger.checkpoint import Checkpoint
from ledger.home import LogHome
from ledger.log import Log
from ledger.note import open_note
from ledger.proofs import InclusionProof, unb64
from tests.support.accounts import PASSWORD, PZ
from tests.support.accounts import auth as _auth
from tests.support.accounts import token as _token
from tests.support.asgi import serving
from tests.support.databases import pair
from tests.support.paths import ROOT


def _is_problem(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = r.json()
    assert body["status"] == status and body["detail"]
    return body


ROLES = [
    # role, token scopes asked (None: the role's), may append
    ("admin", None, True),
    ("overseer", None, True),
    ("operator", None, True),
    ("auditor", None, False),
    ("service", ["events:write"], True),
    ("service", ["read"], False),
]


async def test_role_matrix(log: Log) -> None:
    tokens = {}
    for i, (role, scopes, _) in enumerate(ROLES):
        tokens[i] = await _token(log, f"{role}-{i}", role, scopes)
    async with serving(log) as client:
        for i, (role, scopes, may_append) in enumerate(ROLES):
            who = await client.get("/api/v1/whoami", headers=_auth(tokens[i]))
            assert who.status_code == 200, who.text
            body = who.json()
            assert body["account"] == f"{role}-{i}" and body["role"] == role
            expected = {
                "admin": {"events:write", "events:read", "read", "jobs:submit", "oversight:decide",
                          "privacy:admin", "accounts:admin"},
                "overseer": {"events:write", "events:read", "read", "oversight:decide"},
                "operator": {"events:write", "events:read", "read", "jobs:submit"},
                "auditor": {"read", "events:read"},
            }.get(role, set(scopes or []))
            assert set(body["scopes"]) == expected
            r = await client.post("/api/v1/events", json={"kind": "test.event", "i": i},
                                  headers=_auth(tokens[i]))
            if may_append:
                assert r.status_code == 201, r.text
                assert r.headers["x-recorded-by"] == f"{role}-{i}"
            else:
                assert "events:write" in str(_is_problem(r, 403)["detail"])


async def test_scopes_are_bounded_by_role(db: Database, log: Log) -> None:
    await create_account(db, log, "aud", "auditor", PASSWORD, pseudonymizer=PZ)
    with pytest.raises(AccountError, match="may not hold"):
        await create_token(db, log, "aud", ["events:write"], pseudonymizer=PZ)
    await create_account(db, log, "svc", "service", pseudonymizer=PZ)
    with pytest.raises(AccountError, match="at least one scope"):
        await create_token(db, log, "svc", pseudonymizer=PZ)
    with pytest.raises(AccountError, match="unknown scope"):
        await create_token(db, log, "svc", ["everything"], pseudonymizer=PZ)
    with pytest.raises(AccountError, match="already exists"):
        await create_account(db, log, "svc", "service", pseudonymizer=PZ)
    with pytest.raises(AccountError, match="unknown role"):
        await create_account(db, log, "x", "king", PASSWORD, pseudonymizer=PZ)
    with pytest.raises(AccountError, match="no password"):
        await create_account(db, log, "svc2", "service", PASSWORD, pseudonymizer=PZ)
    with pytest.raises(UnknownAccount):
        await create_token(db, log, "nobody", pseudonymizer=PZ)


async def test_bad_tokens_are_401(db: Database, log: Log) -> None:
    good = await _token(log, "op", "operator")
    expired = (await create_token(db, log, "op", expires_in=timedelta(0), pseudonymizer=PZ)).token
    revoked = (await create_token(db, log, "op", pseudonymizer=PZ)).token
    await revoke_token(db, log, revoked[:12], pseudonymizer=PZ)
    with pytest.raises(AccountError, match="already revoked"):
        await revoke_token(db, log, revoked[4:12], pseudonymizer=PZ)
    with pytest.raises(UnknownAccount):
        await revoke_token(db, log, "rat_zzzzzzzz", pseudonymizer=PZ)
    wrong_secret = good[:12] + ("A" if good[12] != "A" else "B") + good[13:]
    headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer garbage"},
        {"Authorization": f"Basic {good}"},
        _auth("xyz_" + good[4:]),
        _auth(wrong_secret),
        _auth(expired),
        _auth(revoked),
    ]
    async with serving(log) as client:
        assert (await client.get("/api/v1/whoami", headers=_auth(good))).status_code == 200
        for h in headers:
            for r in (await client.get("/api/v1/whoami", headers=h),
                      await client.post("/api/v1/events", json={"kind": "x"}, headers=h)):
                _is_problem(r, 401)
                assert r.headers["www-authenticate"].startswith("Bearer")
    assert await authenticate_token(db, expired) is None
    assert await authenticate_token(db, revoked) is None
    principal = await authenticate_token(db, good)
    assert principal is not None and principal.account == "op" and principal.token_prefix == good[4:12]


async def test_append_one_batch_and_bad_batch(log: Log) -> None:
    token = await _token(log, "op", "operator")
    async with serving(log) as client:
        before = await log.sequenced_size()
        r = await client.post("/api/v1/events", json={"kind": "feedback.recorded", "n": 1},
                              headers=_auth(token))
        assert r.status_code == 201, r.text
        [one] = r.json()["entries"]
        assert one["leaf_index"] == before
        stored = orjson.loads(await log.entry(before))
        assert stored.pop("role") == "operator" and stored.pop("actor").startswith("pseud:")  # the sender
        assert stored.pop("at").endswith("Z")  # when the server recorded it
        assert stored == {"kind": "feedback.recorded", "v": 1, "n": 1}

        batch = [{"kind": "feedback.recorded", "n": n} for n in range(3)]
        r = await client.post("/api/v1/events", json={"events": batch}, headers=_auth(token))
        assert r.status_code == 201, r.text
        assert [e["leaf_index"] for e in r.json()["entries"]] == [before + 1, before + 2, before + 3]
        size = await log.sequenced_size()
        assert size == before + 4

        bad_bodies = [
            {"events": [{"kind": "ok"}, 5, {"kind": "ok"}]},           # not an object
            {"events": [{"kind": "ok"}, {"kind": "big", "n": 2**60}]},  # beyond I-JSON integers
            {"events": [{"kind": "ok"}, {"kind": "huge", "s": "x" * 70000}]},  # over 65,535 bytes
            {"events": []},
            {"events": [{"kind": "n"}] * 1001},
        ]
        for body in bad_bodies:
            r = await client.post("/api/v1/events", json=body, headers=_auth(token))
            detail = str(_is_problem(r, 400)["detail"])
            if len(body["events"]) in (2, 3):
                assert "event 1" in detail, detail
        r = await client.post("/api/v1/events", content=b"{not json", headers=_auth(token))
        _is_problem(r, 400)
        r = await client.post("/api/v1/events", json=[{"kind": "x"}], headers=_auth(token))
        _is_problem(r, 400)
        assert await log.sequenced_size() == size  # nothing appended by any bad request


async def test_wait_returns_verifiable_proofs(log: Log) -> None:
    token = await _token(log, "ov", "overseer")
    events = [{"kind": "run.note", "run": "dpo-7", "n": n} for n in range(5)]
    async with serving(log) as client:
        r = await client.post("/api/v1/events?wait=true&timeout=20", json={"events": events},
                              headers=_auth(token))
    assert r.status_code == 201, r.text
    body = r.json()
    note = body["checkpoint"].encode()
    open_note(note, [log.signer.verifier])  # signed by the log
    cp = Checkpoint.parse(note[: note.index(b"\n\n") + 1])
    for e in body["entries"]:
        proof = e["inclusion_proof"]
        assert proof["tree_size"] == cp.size > e["leaf_index"]
        path = tuple(unb64(h) for h in proof["audit_path"])
        InclusionProof(e["leaf_index"], proof["tree_size"], path).verify(unb64(e["leaf_hash"]), cp.root_hash)


async def test_wait_timeout_is_202_and_durable(log: Log) -> None:
    token = await _token(log, "op", "operator")
    async with serving(log) as client:
        await log.stop()  # no integrator runs: the wait genuinely runs out
        r = await client.post("/api/v1/events?wait=true&timeout=0.3", json={"kind": "x"},
                              headers=_auth(token))
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["checkpoint"] is None and "not integrated" in body["detail"]
        [e] = body["entries"]
        assert orjson.loads(await log.entry(e["leaf_index"]))["kind"] == "x"
        r = await client.post("/api/v1/events?wait=true&timeout=31", json={"kind": "x"}, headers=_auth(token))
        _is_problem(r, 400)


async def test_changes_are_logged_without_secrets(db: Database, log: Log) -> None:
    created = []
    alice = Actor.of_account(PZ, "alice", "admin")
    await create_account(db, log, "alice", "admin", PASSWORD, pseudonymizer=PZ)
    await create_account(db, log, "svc", "service", pseudonymizer=PZ, by=alice)
    created.append(await create_token(db, log, "alice", pseudonymizer=PZ, by=alice))
    created.append(await create_token(db, log, "svc", ["events:write"], timedelta(days=1),
                                      pseudonymizer=PZ, by=alice))
    await revoke_token(db, log, created[0].prefix, pseudonymizer=PZ, by=alice)
    await set_password(db, log, "alice", "another long one", pseudonymizer=PZ, by=alice)
    assert await verify_password(db, "alice", "another long one")
    assert not await verify_password(db, "alice", PASSWORD)
    assert not await verify_password(db, "svc", "")
    assert not await verify_password(db, "nobody", PASSWORD)

    entries = [await log.entry(i) for i in range(await log.sequenced_size())]
    events = [orjson.loads(e) for e in entries]
    assert [e["kind"] for e in events] == ["account.created", "account.created", "token.created",
                                           "token.created", "token.revoked", "account.password_changed"]
    pseud_alice, pseud_svc = PZ.pseudonym("account:alice"), PZ.pseudonym("account:svc")
    first = events[0]
    assert first["at"].endswith("Z") and first["v"] == 1
    assert {k: v for k, v in first.items() if k != "at"} == {
        "kind": "account.created", "v": 1, "actor": SYSTEM.pseudonym, "role": "system",
        "subject": pseud_alice, "subject_role": "admin"}
    assert all(e["actor"] == alice.pseudonym == pseud_alice and e["role"] == "admin" for e in events[1:])
    assert events[1]["subject"] == pseud_svc and events[1]["subject_role"] == "service"
    assert events[3]["prefix"] == created[1].prefix and events[3]["scopes"] == ["events:write"]
    assert events[3]["subject"] == pseud_svc and events[3]["expires_at"] is not None
    assert events[4] | {"at": ""} == {"kind": "token.revoked", "v": 1, "at": "", "actor": pseud_alice,
                                      "role": "admin", "subject": pseud_alice, "prefix": created[0].prefix}
    assert events[5]["subject"] == pseud_alice

    blob = b"\n".join(entries)
    for t in created:
        digest = hashlib.sha256(t.token.encode()).digest()
        for secret in (t.token.encode(), t.token[12:].encode(), digest.hex().encode(),
                       base64.b64encode(digest)):
            assert secret not in blob
    for word in (PASSWORD.encode(), b"another long one", b"$argon2", b"password_hash", b'"alice"', b'"svc"'):
        assert word not in blob


def _cli(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    for name in ("RLHF_AUDIT_DEBUG", "RLHF_AUDIT_DATABASE_URL", "RLHF_AUDIT_HOME"):
        env.pop(name, None)  # the home's own SQLite file
    return subprocess.run([sys.executable, "-m", "app.cli", "--home", str(home), *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)


async def test_cli_users_and_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RLHF_AUDIT_DATABASE_URL", raising=False)
    home = tmp_path / "home"
    assert _cli(home, "init").returncode == 0
    r = _cli(home, "users", "create", "alice", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    r = _cli(home, "tokens", "create", "alice", "--scope", "read", "--expires-in", "2")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token.startswith("rat_") and len(token) == 47 and r.stdout.count("rat_") == 1

    for args, stdin, code, message in [
        (("users", "create", "alice", "--role", "admin", "--password-stdin"), PASSWORD + "\n", 1,
         "already exists"),
        (("tokens", "create", "bob"), "", 3, "no account named 'bob'"),
        (("tokens", "revoke", "rat_zzzzzzzz"), "", 3, "no token"),
        (("users", "create", "carol", "--role", "king"), "", 2, "king"),
        (("users", "create", "svc", "--role", "service", "--password-stdin"), "x\n", 2, "no password"),
    ]:
        r = _cli(home, *args, stdin=stdin)
        assert r.returncode == code, (args, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr, r.stderr
        if code != 2:
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr

    db, log = await open_home(LogHome(home))
    pair(log, db)
    try:
        async with serving(log) as client:
            who = await client.get("/api/v1/whoami", headers=_auth(token))
            assert who.json() == {"account": "alice", "role": "admin", "scopes": ["read"]}
            _is_problem(await client.post("/api/v1/events", json={"kind": "x"}, headers=_auth(token)), 403)
        assert _cli(home, "tokens", "revoke", token[:12]).returncode == 0
        # another process revoked it: this one may trust its cached answer a moment longer
        await asyncio.sleep(TOKEN_CACHE_SECONDS)
        assert await authenticate_token(db, token) is None
        kinds = [orjson.loads(await log.entry(i))["kind"] for i in range(3)]
        assert kinds == ["account.created", "token.created", "token.revoked"]
    finally:
        await log.close()
        await db.close()


async def test_revocation_in_this_process_is_immediate_despite_the_token_cache(db: Database,
                                                                               log: Log) -> None:
    token = await _token(log, "ops", "operator")
    assert await authenticate_token(db, token) is not None  # now cached
    await revoke_token(db, log, token[4:12], pseudonymizer=PZ)
    assert await authenticate_token(db, token) is None


async def test_appended_events_name_their_sender_and_cannot_take_server_kinds(log: Log) -> None:
    token = await _token(log, "op", "operator")
    async with serving(log) as client:
        r = await client.post("/api/v1/events", headers=_auth(token),
                              json={"kind": "run.note", "actor": "pseud:someone-else", "role": "admin"})
        assert r.status_code == 201, r.text
        entry = orjson.loads(await log.entry(r.json()["entries"][0]["leaf_index"]))
        assert entry["role"] == "operator" and entry["actor"].startswith("pseud:")
        assert entry["actor"] != "pseud:someone-else"
        size = await log.sequenced_size()
        for kind in ("oversight.decision", "model.released", "privacy.erased", "account.created",
                     "incident.frozen", "log.key_rotated", "keys.records_kek_rotated"):
            body = {"events": [{"kind": "run.note"}, {"kind": kind}]}
            problem = _is_problem(await client.post("/api/v1/events", headers=_auth(token), json=body), 400)
            assert "recorded by the server" in str(problem["detail"])
        assert await log.sequenced_size() == size


async def test_decisions_need_the_scope_not_only_the_role(db: Database, log: Log) -> None:
    """A read-only token of an overseer or admin cannot take decisions or erase anyone."""
    overseer = await _token(log, "ov-read", "overseer", ["read"])
    admin = await _token(log, "adm-read", "admin", ["read"])
    await create_account(db, log, "bot", "service", pseudonymizer=PZ)
    for scope in ("oversight:decide", "privacy:admin", "accounts:admin"):
        with pytest.raises(AccountError, match="service account may not hold"):
            await create_token(db, log, "bot", [scope], pseudonymizer=PZ)
    async with serving(log) as client:
        r = await client.post("/api/v1/oversight/runs/run_x/halt", headers=_auth(overseer),
                              json={"justification": "a long enough reason to halt"})
        assert "oversight:decide" in str(_is_problem(r, 403)["detail"])
        r = await client.post("/api/v1/privacy/erasures", headers=_auth(admin),
                              json={"annotator": "pseud:00", "legal_basis": "GDPR Art. 17(1)(b)"})
        assert "privacy:admin" in str(_is_problem(r, 403)["detail"])
