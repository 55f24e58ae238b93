"""``rlhf-audit verify`` checks the object store against the log: every artefact the log names
(checkpoint files, final models, bundles, reports, dataset archives) is re-hashed; a changed or
missing one fails, naming the entry, the key and both hashes. FileStore through the CLI, S3
(moto, or MinIO with RLHF_AUDIT_TEST_S3_URL) through the audit, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.audit.artefacts import audit_artefacts, expected_objects
from app.compliance.reports import build_report, render_report
from app.core.database import Database, open_home
from app.core.keyring import Keyring
from app.core.settings import Settings
from app.datasets import import_dataset
from app.events.recording import Actor, record
from app.evidence.builder import build_bundle
from app.evidence.scope import Scope
from app.objects import FileStore, ObjectStore, S3Store
from ledger.home import LogHome
from ledger.log import Log
from tests.support.datasets_data import jsonl, rows
from tests.support.s3_server import S3Server

WORKER = Actor("worker", "service")


def _checkpoint(root: Path) -> dict[str, bytes]:
    files = {"model.safetensors": os.urandom(50_000), "config.json": b'{"layers": 2}',
             "tok/vocab.json": b"{}"}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


async def _story(db: Database, log: Log, objects: ObjectStore, keyring: Keyring,
                 tmp: Path) -> dict[str, Any]:
    """A run's checkpoint, a dataset version, a report and a bundle, each stored and on the log."""
    files = _checkpoint(tmp / "ckpt")
    stored = objects.put_dir("runs/run_a/checkpoint-2", tmp / "ckpt")
    assert {s.key.rsplit("checkpoint-2/", 1)[1]: s.sha256 for s in stored} == {
        rel: "sha256:" + hashlib.sha256(d).hexdigest() for rel, d in files.items()}
    logged = {s.key.rsplit("checkpoint-2/", 1)[1]: s.sha256 for s in stored}
    ckpt = await record(log, "run.checkpoint", WORKER, run="run_a", step=2,
                        object_prefix="runs/run_a/checkpoint-2", files=logged, root="sha256:00")
    await record(log, "run.checkpoint", WORKER, run="run_own", step=1, object_prefix=None,
                 files={"m.bin": "sha256:" + "0" * 64}, root="sha256:00")  # a team's script: stored elsewhere
    imported = await import_dataset(db, log, keyring, "helpful", jsonl(rows(6)), objects=objects)
    await log.integrate()
    report = await build_report(db, log, None, {"kind": "all"}, settings=Settings.load())
    await render_report(log, report, "json", objects=objects)
    bundle = await build_bundle(db, log, Scope("run", run="run_a"), evidence_key=Ed25519PrivateKey.generate(),
                                objects=objects, settings=Settings.load())
    await log.integrate()
    await log.timestamp_pending(force=True)
    return {"checkpoint_leaf": ckpt.leaf_index, "dataset_leaf": imported.leaf_index, "bundle": bundle}


def _events(entries: list[bytes]) -> dict[str, dict[str, Any]]:
    return {e["kind"]: e for e in map(orjson.loads, entries)}


async def _entries(log: Log) -> list[bytes]:
    size = await log.sequenced_size()
    return [bytes(d) for chunk in [c async for c in log.scan_entries(0, size)] for _, d in chunk]


def _verify(home: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "app.cli", "--home", str(home), "verify"], env=env,
                          capture_output=True, text=True, timeout=180)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_verify_names_changed_and_missing_artefacts(tmp_path: Path, database_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_AUDIT_")}
    for k in [k for k in os.environ if k.startswith("RLHF_AUDIT_")]:
        monkeypatch.delenv(k)
    if database_url.startswith("postgresql"):
        env["RLHF_AUDIT_DATABASE_URL"] = database_url
        monkeypatch.setenv("RLHF_AUDIT_DATABASE_URL", database_url)
    home = LogHome(tmp_path / "home")
    home.init("verify.example/log")
    objects = FileStore(home.path / "objects")  # the default store of the home

    async def write() -> tuple[dict[str, Any], list[bytes]]:
        db, log = await open_home(home, migrate=True)
        try:
            story = await _story(db, log, objects, Keyring(tmp_path / "keys"), tmp_path)
            return story, await _entries(log)
        finally:
            await log.close()
            await db.close()

    story, entries = asyncio.run(write())
    events = _events(entries)
    archive = events["dataset.version"]["records_object"]
    assert archive == "datasets/ds_helpful/v1/records.jsonl"
    lines = objects.read(archive).splitlines()
    assert len(lines) == 7 and orjson.loads(lines[0])["records"] == 6
    assert "prompt" not in lines[1].decode()  # ciphertexts only
    assert events["report.generated"]["object_key"].startswith("reports/")
    assert events["bundle.created"]["object_key"] == story["bundle"].stored.key
    assert events["bundle.created"]["sha256"] == "sha256:" + hashlib.sha256(story["bundle"].data).hexdigest()

    ok = _verify(home.path, env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK: the log is intact" in ok.stdout and "OK: every stored artefact matches the log" in ok.stdout
    assert "artefacts checked:   6 object(s)" in ok.stdout
    assert "stored elsewhere, not checked: 1)" in ok.stdout

    model = objects.path("runs/run_a/checkpoint-2/model.safetensors")
    expected = "sha256:" + hashlib.sha256(model.read_bytes()).hexdigest()
    model.write_bytes(b"swapped weights")
    objects.path(story["bundle"].stored.key).unlink()
    bad = _verify(home.path, env)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "OK: the log is intact" in bad.stdout  # the log is fine; the store is not
    fails = [line for line in bad.stdout.splitlines() if line.startswith("FAIL:")]
    assert len(fails) == 2, bad.stdout
    swapped = "sha256:" + hashlib.sha256(b"swapped weights").hexdigest()
    assert (f"FAIL: entry {story['checkpoint_leaf']} (run.checkpoint): object "
            f"runs/run_a/checkpoint-2/model.safetensors has {swapped}; the log says {expected}") in fails
    assert any(f"object {story['bundle'].stored.key} is missing from the object store" in f for f in fails)
    assert "FAILED: 2 artefact problem(s)" in bad.stdout


def test_completed_runs_are_checked_where_the_worker_stored_them() -> None:
    event = {"kind": "run.completed", "run": "run_w",
             "files": {"a.bin": "sha256:aa", "b/c.json": "sha256:bb"}}
    assert [(e.key, e.sha256) for e in expected_objects(7, event, {"run_w"}) or []] == [
        ("runs/run_w/final/a.bin", "sha256:aa"), ("runs/run_w/final/b/c.json", "sha256:bb")]
    assert expected_objects(7, event, set()) is None  # not a worker's run: stored elsewhere
    assert [e.key for e in expected_objects(7, {**event, "object_prefix": "x/y"}, set()) or []] == [
        "x/y/a.bin", "x/y/b/c.json"]
    assert expected_objects(3, {"kind": "bundle.created", "manifest_sha256": "sha256:aa"}, set()) == []


async def test_s3_overwrite_is_named_by_the_audit(db: Database, log: Log, tmp_path: Path,
                                                  s3_server: S3Server) -> None:
    bucket = s3_server.bucket_name("audit")
    days = 1 if s3_server.real else 183
    objects = S3Store(s3_server.endpoint, bucket, s3_server.access_key, s3_server.secret_key,
                      secure=s3_server.secure, retention_days=days)
    story = await _story(db, log, objects, Keyring(tmp_path / "keys"), tmp_path)
    clean = await audit_artefacts(db, log, objects)
    assert clean.ok and clean.objects_checked == 6 and clean.not_stored == 1, clean.problems
    key = "datasets/ds_helpful/v1/records.jsonl"
    original = objects.sha256(key)
    # someone with write access overwrites the archive: a locked bucket keeps the old version, but
    # the newest one (what the store returns) no longer matches the log
    other = S3Store(s3_server.endpoint, bucket, s3_server.access_key, s3_server.secret_key,
                    secure=s3_server.secure, retention_days=days)
    forged = other.put_bytes(key, b'{"format": "forged"}\n')
    found = await audit_artefacts(db, log, objects)
    assert [(p.leaf_index, p.key, p.expected, p.actual) for p in found.problems] == [
        (story["dataset_leaf"], key, original, forged.sha256)]
    assert str(found.problems[0]).startswith(f"entry {story['dataset_leaf']} (dataset.version): object {key}")
    listed = s3_server.client().list_objects(bucket, prefix="datasets/", recursive=True, include_version=True)
    assert len({o.version_id for o in listed}) == 2  # the logged version is still there to restore from
