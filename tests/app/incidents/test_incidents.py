"""The incident evidence freeze (Art. 73) on a real log (SQLite and PostgreSQL) and real stores:
FileStore through the CLI (read-only files, ``verify-bundle``, ``verify`` failing once the frozen
bundle is rewritten), S3 through moto's HTTP server (legal hold ON, the held version undeletable),
and the API (who may freeze, what a bad request gets, halting the runs in scope)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.audit.artefacts import audit_artefacts
from app.core.database import Database, open_home
from app.core.keyring import Keyring
from app.core.settings import Settings
from app.datasets import import_dataset
from app.events.index import EventIndex
from app.events.recording import Actor, record
from app.evidence.dsse import public_key_pem
from app.evidence.scope import Scope
from app.evidence.verify import verify_bundle
from app.incidents import freeze_evidence, list_incidents
from app.jobs.queue import LocalQueue
from app.jobs.service import get_job, submit
from app.objects import FileStore, ObjectStore, S3Store
from ledger.home import LogHome
from ledger.log import Log
from tests.support.accounts import auth, bootstrap
from tests.support.asgi import running
from tests.support.cli_run import cli, cli_env
from tests.support.datasets_data import jsonl, rows
from tests.support.s3_server import S3Server
from trainers.hashing import directory_root

WORKER = Actor("worker", "service")
OVERSEER = Actor("pseud:" + "e5" * 16, "overseer")
WHY = "user reports harmful completions from model_a since Tuesday"


def _model_dir(root: Path, seed: str) -> Path:
    files = {"model.safetensors": hashlib.sha256(seed.encode()).digest() * 500, "config.json": b"{}"}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


async def _stored_dir(log: Log, objects: ObjectStore, kind: str, run: str, prefix: str, path: Path,
                      **fields: Any) -> dict[str, str]:
    files = {s.key.removeprefix(prefix + "/"): s.sha256 for s in objects.put_dir(prefix, path)}
    await record(log, kind, WORKER, run=run, object_prefix=prefix, files=files, root="sha256:00", **fields)
    return {f"{prefix}/{rel}": digest for rel, digest in files.items()}


async def _story(db: Database, log: Log, objects: ObjectStore, keyring: Keyring, tmp: Path) -> dict[str, str]:
    """run_a trained on an archived dataset version, with a stored checkpoint and final model; run_b
    (out of scope) has a stored checkpoint too. Returns what a freeze of run_a must hold."""
    imported = await import_dataset(db, log, keyring, "helpful", jsonl(rows(6)), objects=objects)
    archive = f"datasets/{imported.dataset}/v{imported.version}/records.jsonl"
    held = {archive: objects.sha256(archive)}
    await record(log, "run.started", WORKER, run="run_a", dataset=imported.dataset,
                 dataset_version=imported.version, config_sha256="sha256:" + "1" * 64)
    held |= await _stored_dir(log, objects, "run.checkpoint", "run_a", "runs/run_a/checkpoint-2",
                              _model_dir(tmp / "a2", "a2"), step=2)
    held |= await _stored_dir(log, objects, "run.completed", "run_a", "runs/run_a/final",
                              _model_dir(tmp / "af", "af"), model="model_a", steps=4)
    await _stored_dir(log, objects, "run.checkpoint", "run_b", "runs/run_b/checkpoint-1",
                      _model_dir(tmp / "b1", "b1"), step=1)
    await log.integrate()
    await log.timestamp_pending(force=True)
    return held


async def _entries(log: Log) -> list[dict[str, Any]]:
    return [orjson.loads(await log.entry(i)) for i in range(await log.sequenced_size())]


def _bundle_entries(data: bytes) -> list[dict[str, Any]]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [orjson.loads(z.read(n)) for n in z.namelist() if n.startswith("entries/")]


def _writable(path: Path) -> bool:
    return bool(path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def test_cli_freeze_holds_the_run_and_verify_checks_the_bundle(tmp_path: Path, database_url: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for k in [k for k in os.environ if k.startswith("RLHF_AUDIT_")]:
        monkeypatch.delenv(k)
    pg = database_url if database_url.startswith("postgresql") else None
    if pg:
        monkeypatch.setenv("RLHF_AUDIT_DATABASE_URL", pg)
    env = cli_env(tmp_path / "home", pg)
    home = LogHome(tmp_path / "home")
    home.init("incident.example/log")
    objects = FileStore(home.path / "objects")  # the home's default store, as the CLI opens it

    async def write() -> dict[str, str]:
        db, log = await open_home(home, migrate=True)
        try:
            return await _story(db, log, objects, Keyring.of(home, Settings.load(home.path)), tmp_path)
        finally:
            await log.close()
            await db.close()

    held = asyncio.run(write())
    out = json.loads(cli(env, "incident", "freeze", "--run", "run_a", "--reason", WHY).stdout)
    key = out["object_key"]
    assert key == f"incidents/{out['incident']}/bundle.zip" and out["incident"].startswith("inc_")
    data = objects.read(key)
    assert out["sha256"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert out["held"] == len(held) == 5 and out["missing"] == [] and out["changed"] == []
    assert out["held_root"] == directory_root(held)
    # held means read-only here: the bundle and every artefact of run_a, not run_b's
    assert not _writable(objects.path(key))
    assert not any(_writable(objects.path(k)) for k in held)
    assert _writable(objects.path("runs/run_b/checkpoint-1/model.safetensors"))
    # the bundle verifies offline, against the checkpoint the freeze reported
    (tmp_path / "frozen.zip").write_bytes(data)
    vkey = (home.path / "log.vkey").read_text().strip()
    checked = cli(env, "verify-bundle", str(tmp_path / "frozen.zip"), "--log-key", vkey,
                  "--tsa-root", str(home.path / "tsa" / "root.pem")).stdout.decode()
    assert "VERIFIED" in checked and f"are in checkpoint {out['tree_size']}" in checked
    assert {e.get("run") for e in _bundle_entries(data)} >= {"run_a"}
    assert "run_b" not in {e.get("run") for e in _bundle_entries(data)}
    # incident.frozen is on the log, listed, and names the bundle's hash
    [listed] = [json.loads(line) for line in cli(env, "incident", "list").stdout.decode().splitlines()]
    assert listed["kind"] == "incident.frozen" and listed["leaf_index"] == out["leaf_index"]
    assert listed["sha256"] == out["sha256"] and listed["object_key"] == key and listed["reason"] == WHY
    assert listed["scope"] == {"kind": "run", "run": "run_a"} and listed["tree_size"] == out["tree_size"]
    assert listed["held"] == 5 and listed["held_root"] == out["held_root"] and listed["role"] == "system"
    ok = cli(env, "verify").stdout.decode()
    assert "OK: every stored artefact matches the log" in ok
    # someone with the directory undoes the read-only bit and rewrites the frozen bundle
    objects.path(key).chmod(0o644)
    objects.path(key).write_bytes(data[:-10] + b"tampered!!")
    bad = cli(env, "verify", ok=False)
    assert bad.returncode == 1
    assert f"(incident.frozen): object {key} has sha256:" in bad.stdout.decode()


def test_cli_errors_are_readable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in [k for k in os.environ if k.startswith("RLHF_AUDIT_")]:
        monkeypatch.delenv(k)
    env = cli_env(tmp_path / "home")
    cli(env, "init", "--origin", "incident.example/log")
    cli(env, "append", input=json.dumps({"kind": "run.metrics", "run": "run_x", "steps": []}).encode())
    cases = [
        (("--run", "run_x"), "--reason is required"),
        (("--run", "run_x", "--reason", "  "), "--reason is required"),
        (("--run", "run_x", "--reason", "too short"), "at least 10 characters"),
        (("--reason", WHY), "give exactly one scope"),
        (("--run", "run_x", "--since", "2026-01-01T00:00:00Z", "--reason", WHY), "give exactly one scope"),
        (("--run", "run_missing", "--reason", WHY), "the log has no event of run 'run_missing'"),
        (("--since", "last tuesday", "--until", "2026-01-01T00:00:00Z", "--reason", WHY),
         "'since' is not an RFC 3339 time"),
        (("--since", "2026-01-01T00:00:00Z", "--reason", WHY), "needs a non-empty 'until'"),
        (("--since", "2001-01-01T00:00:00Z", "--until", "2001-01-02T00:00:00Z", "--reason", WHY),
         "the log has no event in"),
        (("--run", "run_x", "--reason", WHY, "--halt"), "--halt is an oversight decision"),
        (("--run", "run_x", "--reason", WHY, "--as", "nobody"), "nobody"),
    ]
    for args, message in cases:
        proc = cli(env, "incident", "freeze", *args, ok=False)
        assert message in proc.stderr.decode(), (args, proc.stderr.decode())
    assert cli(env, "incident", "list").stdout == b""  # nothing was frozen


async def test_s3_freeze_sets_legal_holds(db: Database, log: Log, tmp_path: Path,
                                          s3_server: S3Server) -> None:
    from minio.error import S3Error

    bucket = s3_server.bucket_name("incident")
    objects = S3Store(s3_server.endpoint, bucket, s3_server.access_key, s3_server.secret_key,
                      secure=s3_server.secure, retention_days=1 if s3_server.real else 183)
    held = await _story(db, log, objects, Keyring(tmp_path / "keys"), tmp_path)
    frozen = await freeze_evidence(db, log, Scope("run", run="run_a"), WHY, OVERSEER, objects=objects,
                                   evidence_key=Ed25519PrivateKey.generate(), settings=Settings.load())
    assert frozen.held == sorted(held) and frozen.held_root == directory_root(held)
    client = s3_server.client()

    def lock(key: str) -> dict[str, str]:
        meta = client.stat_object(bucket, key).metadata
        return {k.lower(): v for k, v in meta.items() if k.lower().startswith("x-amz-object-lock-")}

    for key in (frozen.object_key, *held):
        assert lock(key).get("x-amz-object-lock-legal-hold") == "ON", key
    assert lock("runs/run_b/checkpoint-1/model.safetensors").get("x-amz-object-lock-legal-hold") != "ON"
    version = client.stat_object(bucket, frozen.object_key).version_id
    with pytest.raises(S3Error) as refused:
        client.remove_object(bucket, frozen.object_key, version_id=version)
    assert refused.value.code == "AccessDenied"
    # on the log, by the overseer, with the stored zip's hash; the artefact audit checks it
    [event] = [e for e in await _entries(log) if e["kind"] == "incident.frozen"]
    assert event["actor"] == OVERSEER.pseudonym and event["role"] == "overseer"
    assert event["sha256"] == objects.sha256(frozen.object_key) == frozen.sha256
    assert (await audit_artefacts(db, log, objects)).ok
    forged = objects.put_bytes(frozen.object_key, b"not the frozen bundle")  # a newer version
    problems = (await audit_artefacts(db, log, objects)).problems
    assert [(p.kind, p.key, p.actual) for p in problems] == [
        ("incident.frozen", frozen.object_key, forged.sha256)]
    assert [i["incident"] for i in await list_incidents(EventIndex(db, log))] == [frozen.incident]


async def test_api_freeze_permissions_errors_and_halt(
        db: Database, log: Log, keyring: Keyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RLHF_AUDIT_S3_ENDPOINT", raising=False)
    monkeypatch.setenv("RLHF_AUDIT_OBJECTS_DIR", str(tmp_path / "objects"))
    objects = FileStore(tmp_path / "objects")
    imported = await import_dataset(db, log, keyring, "helpful", jsonl(rows(6)), objects=objects)
    spec = {"kind": "reward_model", "base_model": "models/none", "dataset": imported.dataset,
            "learning_rate": 1e-3, "batch_size": 4, "max_steps": 4}  # never trained: it stays queued
    job = await submit(db, log, keyring, LocalQueue(), spec, Actor("system", "system"))
    tokens = {role: await bootstrap(log, keyring, role, role) for role in ("overseer", "auditor", "admin")}
    read_only = await bootstrap(log, keyring, "ovr", "overseer", ["read"])
    body = {"reason": WHY, "scope": {"kind": "run", "run": job.run}, "halt": True}
    async with running(log, keyring) as (_, client):
        url = "/api/v1/incidents"
        for who in (tokens["auditor"], read_only):
            r = await client.post(url, json=body, headers=auth(who))
            assert r.status_code == 403, r.text
        assert (await client.post(url, json=body)).status_code == 401
        admin = auth(tokens["admin"])
        for bad, status, words in (
                ({"scope": body["scope"]}, 400, "reason"),
                ({**body, "reason": "short"}, 400, "at least 10 characters"),
                ({"reason": WHY}, 400, "scope"),
                ({"reason": WHY, "scope": {"kind": "run"}}, 400, "'run'"),
                ({"reason": WHY, "scope": {"kind": "galaxy"}}, 400, "galaxy"),
                ({**body, "halt": "yes"}, 400, "halt"),
                ({**body, "colour": "red"}, 400, "colour"),
                ({"reason": WHY, "scope": {"kind": "run", "run": "run_nope"}}, 404, "run_nope")):
            r = await client.post(url, json=bad, headers=admin)
            assert r.status_code == status, (bad, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert words in r.json()["detail"], r.text
        assert (await client.post(url, content=b"{", headers=admin)).status_code == 400
        assert (await get_job(db, job.run)).status == "queued"  # no refused request halted anything
        # clients cannot forge a freeze through the events API
        r = await client.post("/api/v1/events", json={"kind": "incident.frozen", "incident": "inc_x"},
                              headers=admin)
        assert r.status_code == 400 and "recorded by the server" in r.text
        r = await client.post(url, json=body, headers=auth(tokens["overseer"]))
        assert r.status_code == 201, r.text
        frozen = r.json()
        [decision] = frozen["halted"]
        listed = (await client.get(url, headers=auth(tokens["auditor"]))).json()["incidents"]
        assert [(i["incident"], i["halted"], i["role"]) for i in listed] == [
            (frozen["incident"], [decision], "overseer")]
    halted = await get_job(db, job.run)
    assert halted.status == "halted" and halted.halt_decision == decision
    data = objects.read(frozen["object_key"])
    assert frozen["sha256"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert not _writable(objects.path(frozen["object_key"]))
    assert frozen["held"] == [f"datasets/{imported.dataset}/v1/records.jsonl"]
    # the halt is its own oversight decision, made before the bundle was built: it is in it
    decisions = [e for e in _bundle_entries(data) if e["kind"] == "oversight.decision"]
    assert [(d["action"], d["decision_id"], d["justification"]) for d in decisions] == [
        ("halt", decision, WHY)]
    report = verify_bundle(data, log_key=log.signer.verifier.vkey,
                           evidence_key=public_key_pem(keyring.evidence_signer.public_key()))
    assert report.ok, report.text()
