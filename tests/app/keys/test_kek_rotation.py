"""Rotating the records KEK: record keys re-wrapped, TOTP secrets re-encrypted, one transaction,
crash-safe key files, erasure intact, the rotation on the log. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import orjson
import pyotp
import pytest
import sqlalchemy as sa

import app.keys.kek_rotation as kek_rotation
from app.accounts import create_account, get_account
from app.accounts.schema import account_totp
from app.auth.keys import totp_key_of
from app.auth.totp import begin, confirm, open_secret, verify
from app.core.database import Database
from app.core.keyring import RECORDS_KEY, RECORDS_KEY_NEXT, Keyring, RecordsKekPending, records_kek_id
from app.datasets import erase_subject, find_subject, import_dataset, load_version
from app.datasets.errors import RecordsUnreadable
from app.datasets.records import unwrap_with
from app.datasets.schema import data_subjects, dataset_records
from app.events.recording import Actor
from app.keys.kek_rotation import EVENT, rotate_records_kek, settle_records_kek
from ledger._internal.local_tsa import LocalTSA
from ledger.audit import audit_log
from ledger.log import Log
from tests.support.cli_run import cli, cli_env
from tests.support.databases import database_of
from tests.support.datasets_data import ANNOTATORS, jsonl, rows

ADMIN = Actor("pseud:" + "a" * 32, "admin")
PASSWORD = "correct horse battery"


async def _records(db: Database, log: Log, keyring: Keyring,
                   name: str) -> list[tuple[str, dict[str, Any]]]:
    loaded = await load_version(db, log, keyring, name, exclude_rejected=False)
    return [(r.annotator, {"prompt": r.prompt, "chosen": r.chosen, "rejected": r.rejected,
                           "labels": r.labels}) for r in loaded.records]


async def _wrapped(db: Database) -> list[tuple[str, bytes]]:
    s = data_subjects.c
    async with db.engine.connect() as conn:
        return [(r.pseudonym, bytes(r.wrapped_key))
                for r in await conn.execute(sa.select(s.pseudonym, s.wrapped_key).order_by(s.id))]


async def _totp_secret(db: Database) -> tuple[int, bytes]:
    t = account_totp.c
    async with db.engine.connect() as conn:
        row = (await conn.execute(sa.select(t.account_id, t.secret))).one()
    return row.account_id, bytes(row.secret)


async def _enrol(log: Log, keyring: Keyring, name: str) -> pyotp.TOTP:
    db = database_of(log)
    await create_account(db, log, name, "admin", PASSWORD, pseudonymizer=keyring.pseudonymizer)
    secret, _ = await begin(db, keyring, await get_account(db, name))
    totp = pyotp.TOTP(secret)
    await confirm(db, log, keyring, await get_account(db, name), totp.now(), by=ADMIN)
    return totp


async def _entries(log: Log, kind: str) -> list[dict[str, Any]]:
    out = []
    for i in range(await log.sequenced_size()):
        doc = orjson.loads(await log.entry(i))
        if doc["kind"] == kind:
            out.append(doc)
    return out


async def test_rotation_rewraps_reencrypts_logs_and_keeps_erasure(db: Database, log: Log, tmp_path: Path,
                                                                  local_tsa: LocalTSA) -> None:
    keys = tmp_path / "keys"
    keyring = Keyring(keys)
    await import_dataset(db, log, keyring, "one", jsonl(rows(12)))
    before = await _records(db, log, keyring, "one")
    totp = await _enrol(log, keyring, "ada")
    ada = await get_account(db, "ada")
    old = keyring.records_kek
    assert all(unwrap_with(old, w, p) for p, w in await _wrapped(db))

    done = await rotate_records_kek(db, log, keyring, actor=ADMIN)
    new = (keys / RECORDS_KEY).read_bytes()
    assert new != old and len(new) == 32 and keyring.records_kek == new
    assert (done.subjects, done.totp_secrets) == (3, 1)
    assert (done.kek_id, done.previous_kek_id) == (records_kek_id(new), records_kek_id(old))
    assert not (keys / RECORDS_KEY_NEXT).exists()
    retired = keys / "retired" / f"records-{records_kek_id(old)}.key"
    assert done.retired_file == str(retired) and retired.read_bytes() == old
    for path in (retired, keys / RECORDS_KEY):
        assert path.stat().st_mode & 0o777 == 0o600

    fresh = Keyring(keys)  # another process after the rotation
    assert await _records(db, log, fresh, "one") == before  # same plaintext
    wrapped = await _wrapped(db)
    assert len(wrapped) == 3
    assert all(unwrap_with(old, w, p) is None and unwrap_with(new, w, p) is not None for p, w in wrapped)
    account_id, sealed = await _totp_secret(db)
    assert open_secret(totp_key_of(old), account_id, sealed) is None
    assert open_secret(totp_key_of(new), account_id, sealed) == totp.secret
    assert await verify(db, fresh, ada.id, totp.at(time.time() + totp.interval))

    [event] = await _entries(log, EVENT)
    assert event == {**event, "kind": EVENT, "actor": ADMIN.pseudonym, "role": "admin", "subjects": 3,
                     "totp_secrets": 1, "kek_id": done.kek_id, "previous_kek_id": done.previous_kek_id,
                     "old_key": "retired"}
    assert "recovered" not in event
    raw = await log.entry(done.leaf_index)
    for key in (old, new):
        for form in (key, key.hex().encode(), base64.b64encode(key)):
            assert form not in raw

    # erasure after the rotation; a second rotation leaves the erased subject erased
    alice = await find_subject(db, fresh, ANNOTATORS[0])
    assert alice is not None
    erased = await erase_subject(db, log, alice, legal_basis="GDPR Art. 17", actor=ADMIN)
    assert erased.records == 4
    again = await rotate_records_kek(db, log, fresh, actor=ADMIN, keep_old=False)
    assert (again.subjects, again.totp_secrets, again.retired_file) == (2, 1, None)
    assert again.previous_kek_id == done.kek_id
    assert sorted(p.name for p in (keys / "retired").iterdir()) == [retired.name]
    assert await find_subject(db, Keyring(keys), ANNOTATORS[0]) is None
    r = dataset_records.c
    async with db.engine.connect() as conn:
        erased_rows = sa.select(r.ciphertext, r.subject_id).where(r.erased_at.is_not(None))
        gone = (await conn.execute(erased_rows)).all()
    assert len(gone) == 4 and all(g == (None, None) for g in gone)
    after = await _records(db, log, Keyring(keys), "one")
    assert after == [rec for rec in before if rec[0] != alice]
    await import_dataset(db, log, Keyring(keys), "two", jsonl(rows(3)))  # new subjects under the new key
    assert await find_subject(db, Keyring(keys), ANNOTATORS[0]) not in (None, alice)

    assert [e["old_key"] for e in await _entries(log, EVENT)] == ["retired", "discarded"]
    await log.integrate()
    await log.timestamp_pending(force=True)
    report = await audit_log(log, tsa_roots=[local_tsa.root_certificate],
                             required_tsas=[t.name for t in log.tsas])
    assert report.ok, report.problems


class Crash(BaseException):
    """The process dying at that point (nothing after it runs, no cleanup catches it)."""


def _crash(*_: Any, **__: Any) -> Any:
    raise Crash


async def test_crash_after_commit_is_finished_on_recovery(db: Database, log: Log, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    keys = tmp_path / "keys"
    keyring = Keyring(keys)
    await import_dataset(db, log, keyring, "one", jsonl(rows(6)))
    before = await _records(db, log, keyring, "one")
    totp = await _enrol(log, keyring, "ada")
    old = keyring.records_kek

    # dies after the commit, before the event and the rename: the database is under records.key.next
    with monkeypatch.context() as m:
        m.setattr(kek_rotation, "_record", _crash)
        with pytest.raises(Crash):
            await rotate_records_kek(db, log, keyring, actor=ADMIN)
    staged = (keys / RECORDS_KEY_NEXT).read_bytes()
    assert (keys / RECORDS_KEY).read_bytes() == old
    assert all(unwrap_with(staged, w, p) for p, w in await _wrapped(db))
    opened = Keyring(keys)
    with pytest.raises(RecordsKekPending, match="rotate-records-kek --recover"):
        opened.records_kek  # noqa: B018  (fail closed: it cannot know which key is right)
    settled = await settle_records_kek(db, log, opened)
    assert settled is not None and settled.outcome == "installed" and settled.kek_id == records_kek_id(staged)
    assert (keys / RECORDS_KEY).read_bytes() == staged and not (keys / RECORDS_KEY_NEXT).exists()
    assert (keys / "retired" / f"records-{records_kek_id(old)}.key").read_bytes() == old
    assert await _records(db, log, opened, "one") == before
    ada = await get_account(db, "ada")
    assert await verify(db, opened, ada.id, totp.at(time.time() + totp.interval))
    [event] = await _entries(log, EVENT)
    assert event["recovered"] is True and (event["subjects"], event["totp_secrets"]) == (3, 1)
    assert event["kek_id"] == records_kek_id(staged) and event["actor"] == "system"
    assert await settle_records_kek(db, log, opened) is None  # nothing left to settle

    # dies after the event, before the rename: recovery installs without a second event
    with monkeypatch.context() as m:
        m.setattr(Keyring, "install_staged_records_kek", _crash)
        with pytest.raises(Crash):
            await rotate_records_kek(db, log, opened, actor=ADMIN)
    assert len(await _entries(log, EVENT)) == 2
    third = Keyring(keys)
    done = await rotate_records_kek(db, log, third, actor=ADMIN)  # rotate settles first, then rotates
    events = await _entries(log, EVENT)
    assert len(events) == 3 and "recovered" not in events[1] and events[2]["kek_id"] == done.kek_id
    assert events[2]["previous_kek_id"] == events[1]["kek_id"]
    assert len(list((keys / "retired").iterdir())) == 3
    assert await _records(db, log, Keyring(keys), "one") == before


async def test_crash_or_failure_before_commit_keeps_the_old_key(db: Database, log: Log, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    keys = tmp_path / "keys"
    keyring = Keyring(keys)
    await import_dataset(db, log, keyring, "one", jsonl(rows(6)))
    before = await _records(db, log, keyring, "one")
    old = keyring.records_kek
    wrapped = await _wrapped(db)

    # the process dies with the new key staged, before the transaction commits
    keyring.stage_records_kek(bytes(32))
    opened = Keyring(keys)
    settled = await settle_records_kek(db, log, opened)
    assert settled is not None and settled.outcome == "dropped"
    assert not (keys / RECORDS_KEY_NEXT).exists() and opened.records_kek == old
    assert await _records(db, log, opened, "one") == before and await _entries(log, EVENT) == []

    # the transaction fails (a row opens under neither key): rolled back, staged key removed
    s = data_subjects.c
    async with db.engine.begin() as conn:
        first = (await conn.execute(sa.select(s.id, s.wrapped_key).order_by(s.id.desc()).limit(1))).one()
        await conn.execute(sa.update(data_subjects).where(s.id == first.id).values(
            wrapped_key=bytes(first.wrapped_key)[:-1] + bytes([first.wrapped_key[-1] ^ 1])))
    with pytest.raises(RecordsUnreadable, match="neither the old nor the new"):
        await rotate_records_kek(db, log, opened, actor=ADMIN)
    assert not (keys / RECORDS_KEY_NEXT).exists() and (keys / RECORDS_KEY).read_bytes() == old
    assert [w for _, w in await _wrapped(db)][:-1] == [w for _, w in wrapped][:-1]  # nothing re-wrapped
    assert await _entries(log, EVENT) == []

    # a staged key and an installed key that both fail to open the rows: recovery refuses
    (keys / RECORDS_KEY).write_bytes(bytes(32))
    keyring.stage_records_kek(bytes([1]) * 32)
    with pytest.raises(RecordsUnreadable, match="neither records.key nor records.key.next"):
        await settle_records_kek(db, log, Keyring(keys))
    assert (keys / RECORDS_KEY_NEXT).exists()  # left for a person to decide


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    return cli_env(tmp_path / "home", url)


def test_cli_rotate_twice_recover_and_errors(env: dict[str, str], tmp_path: Path) -> None:
    keys = Path(env["RLHF_AUDIT_HOME"]) / "keys"
    data = tmp_path / "one.jsonl"
    data.write_bytes(jsonl(rows(6)))
    cli(env, "init")
    cli(env, "datasets", "import", str(data), "--dataset", "one")
    cli(env, "users", "create", "ada", "--role", "admin", "--password-stdin", input=f"{PASSWORD}\n".encode())
    cli(env, "users", "create", "otto", "--role", "operator", "--password-stdin",
        input=f"{PASSWORD}\n".encode())
    old = (keys / RECORDS_KEY).read_bytes()

    for who, wrong in (("nobody", b"nobody"), ("otto", b"needs admin")):
        failed = cli(env, "keys", "rotate-records-kek", "--as", who, ok=False)
        assert wrong in failed.stderr, failed.stderr
    assert (keys / RECORDS_KEY).read_bytes() == old

    first = cli(env, "keys", "rotate-records-kek", "--as", "ada")
    assert b"re-wrapped 3 data subjects' record keys and 0 TOTP secrets" in first.stderr, first.stderr
    assert b"old key: kept in" in first.stderr
    second = cli(env, "keys", "rotate-records-kek", "--discard-old-key")
    assert b"old key: discarded" in second.stderr
    assert [p.name for p in (keys / "retired").iterdir()] == [f"records-{records_kek_id(old)}.key"]
    events = [json.loads(cli(env, "entry", str(i)).stdout)
              for i in range(int(json.loads(cli(env, "status").stdout)["sequenced"]))]
    rotated = [e for e in events if e["kind"] == EVENT]
    assert [(e["role"], e["subjects"]) for e in rotated] == [("admin", 3), ("system", 3)]
    assert b"OK: the log is intact" in cli(env, "verify").stdout

    # an interrupted rotation whose staged key the database never saw: --recover undoes it
    assert b"nothing to do" in cli(env, "keys", "rotate-records-kek", "--recover").stderr
    (keys / RECORDS_KEY_NEXT).write_bytes(bytes(32))
    (keys / RECORDS_KEY_NEXT).chmod(0o600)
    assert b"undid an interrupted rotation" in cli(env, "keys", "rotate-records-kek", "--recover").stderr
    assert not (keys / RECORDS_KEY_NEXT).exists()

    # a keys directory that does not belong to the database: a readable error, nothing changed
    current = (keys / RECORDS_KEY).read_bytes()
    (keys / RECORDS_KEY).write_bytes(bytes(32))
    failed = cli(env, "keys", "rotate-records-kek", ok=False)
    assert b"opens under neither the old nor the new records key" in failed.stderr, failed.stderr
    assert not (keys / RECORDS_KEY_NEXT).exists()
    (keys / RECORDS_KEY).write_bytes(current)

    # erasure works after the rotations; then the self-audit still passes
    annotator = next(e["annotator"] for e in events if e["kind"] == "dataset.record")
    cli(env, "privacy", "erase", "--annotator", annotator, "--legal-basis", "GDPR Art. 17", "--as", "ada")
    shown = cli(env, "datasets", "show", "one")
    assert shown.returncode == 0
    assert b"OK: the log is intact" in cli(env, "verify").stdout
