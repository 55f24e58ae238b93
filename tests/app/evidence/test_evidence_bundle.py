"""Evidence bundles built from a real log (SQLite and PostgreSQL) for each kind of scope, checked by
both offline verifiers (``app.evidence.verify`` and the standalone ``verify.py`` run alone in a
subprocess), by ``openssl ts -verify``, through the CLI and through the API."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.accounts import create_account, create_token
from app.core.database import Database
from app.core.keyring import Keyring
from app.core.settings import Settings
from app.events.index import EventIndex
from app.events.recording import event
from app.evidence.builder import build_bundle, record_evidence_key
from app.evidence.dsse import public_key_pem
from app.evidence.scope import Scope
from app.evidence.verify import verify_bundle
from ledger._internal.local_tsa import LocalTSA
from ledger._internal.store import Store
from ledger.errors import NotFound
from ledger.log import Log
from ledger.note import Signer
from ledger.timestamping import HttpTSA
from tests.app.evidence.test_bundle_trust import cited
from tests.support.asgi import serving
from tests.support.evidence import STANDALONE, WORKER, Pins, members, pins, standalone, write_story
from tests.support.paths import ROOT

RUN_A = ("ds_helpful.records", "ds_helpful.version", "ds_helpful.datasheet", "ds_helpful.budget",
         "run_a", "halt_a", "release_a")  # model.released names run_a too
SCOPES = [
    (Scope("run", run="run_a"), RUN_A),
    (Scope("model", model="model_a"), (*RUN_A, "approve_a")),
    (Scope("dataset", dataset="ds_other", version=1),
     ("ds_other.records", "ds_other.version", "ds_other.datasheet", "ds_other.budget")),
]


def test_standalone_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    import ast

    tree = ast.parse(STANDALONE.read_text())
    roots = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    roots |= {node.module.split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module}
    assert roots - set(sys.stdlib_module_names) == {"cryptography"}
    code = ("import sys, app.evidence.verify; bad = [m for m in ('ledger.log', 'ledger._internal.store', "
            "'sqlalchemy') if m in sys.modules] + [m for m in sys.modules if m.split('.')[0] == 'app' "
            "and m not in ('app', 'app.evidence', 'app.evidence.verify', 'app.evidence.standalone_verify')]; "
            "print(bad); sys.exit(bool(bad))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    # the package's verifier is checking-side only; it runs the standalone one's report check (pinned above)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def verify_both(tmp: Path, bundle: bytes, p: Pins) -> tuple[Any, subprocess.CompletedProcess[str]]:
    report = verify_bundle(bundle, log_key=p.log_vkey, tsa_roots=[p.tsa_root], evidence_key=p.evidence)
    return report, standalone(tmp, bundle, *p.files)


def _indices(bundle: bytes) -> set[int]:
    return {int(n[len("entries/"):-len(".json")]) for n in members(bundle) if n.startswith("entries/")}


async def test_each_scope_builds_and_verifies_with_both_verifiers(
        db: Database, log: Log, local_tsa: LocalTSA, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    key_entry = await record_evidence_key(log, EventIndex(db, log), key)  # as when the home was set up
    story = await write_story(log)
    p = pins(tmp_path, log, local_tsa, key)
    since = json.loads(await log.entry(story.at["run_a"][0]))["at"]
    scopes = [*SCOPES, (Scope("time", since=since, until="2999-01-01T00:00:00Z"), None)]
    for scope, names in scopes:
        built = await build_bundle(db, log, scope, evidence_key=key, settings=Settings.load())
        got = _indices(built.data)
        files = members(built.data)
        extra = {key_entry, *cited(files)}  # besides the scope: the key's entry, the citations
        assert json.loads(files["manifest.json"])["evidence_key_entry"] == key_entry
        if names is not None:
            assert story.of(*names) <= got and got - story.of(*names) <= extra, scope
        else:  # a time range: everything from run_a on, including the bundle.created events since
            assert story.of("run_a", "noise") <= got
            assert {i for i in got if i < story.at["run_a"][0]} <= extra
        assert built.entries == len(got)
        cp = await log.checkpoint_covering(max(got))  # the proofs' checkpoint is the first covering all
        assert built.tree_size == cp.size and built.latest_tree_size >= cp.size
        report, proc = verify_both(tmp_path, built.data, p)
        assert report.ok, report.text()
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "VERIFIED" in proc.stdout and "WARN" not in proc.stdout  # everything was pinned
        for check in ("archive", "manifest", "files", "attestation", "log-key", "checkpoints",
                      "consistency", "timestamps", "entries"):
            assert f"OK    {check}" in proc.stdout and f"OK    {check}" in report.text()
        for check in ("evidence-key", "citations"):
            assert f"OK    {check}" in proc.stdout and f"OK    {check}" in report.text()
        assert f"{built.entries} entries are in checkpoint {built.tree_size}" in proc.stdout
        # creating it is on the log, with the manifest's hash
        newest = json.loads(await log.entry((await log.sequenced_size()) - 1))
        assert newest["kind"] == "bundle.created" and newest["scope"] == scope.to_json()
        assert newest["manifest_sha256"] == "sha256:" + hashlib.sha256(
            members(built.data)["manifest.json"]).hexdigest()
        assert newest["entries"] == built.entries and newest["tree_size"] == built.tree_size


async def test_manifest_and_attestation_shape(db: Database, log: Log, local_tsa: LocalTSA) -> None:
    key = Ed25519PrivateKey.generate()
    await record_evidence_key(log, EventIndex(db, log), key)
    await write_story(log)
    built = await build_bundle(db, log, Scope("run", run="run_a"), evidence_key=key, record_event=False,
                               settings=Settings.load())
    files = members(built.data)
    manifest = json.loads(files["manifest.json"])
    assert set(files) - set(manifest["files"]) == {"manifest.json", "attestation.dsse.json"}
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(files[name]).hexdigest() == digest
    assert manifest["origin"] == log.origin and manifest["scope"] == {"kind": "run", "run": "run_a"}
    assert manifest["latest_tree_size"] > manifest["tree_size"]  # a consistency proof is needed
    assert manifest["consistency"][0]["proof"] in files
    assert files["keys/log.vkey"].decode().strip() == log.signer.verifier.vkey
    assert files["keys/tsa-chain.pem"] == local_tsa.chain_pem()
    assert files["verify.py"] == STANDALONE.read_bytes()
    assert log.signer.verifier.vkey in files["README.md"].decode()
    assert "openssl ts -verify" in files["README.md"].decode()
    env = json.loads(files["attestation.dsse.json"])
    assert env["payloadType"] == "application/vnd.in-toto+json"
    statement = json.loads(base64.b64decode(env["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://rlhf-audit-trail.dev/evidence/v1"
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert subjects["manifest.json"] == hashlib.sha256(files["manifest.json"]).hexdigest()
    assert subjects["report.json"] == hashlib.sha256(files["report.json"]).hexdigest()
    assert json.loads(files["report.json"])["scope"]["run"] == "run_a"
    # the DSSE signature is Ed25519 over PAE, by the key we gave
    t, body = env["payloadType"].encode(), base64.b64decode(env["payload"])
    pae = b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)
    key.public_key().verify(base64.b64decode(env["signatures"][0]["sig"]), pae)
    # every entry file is the log's entry, byte for byte
    for i in _indices(built.data):
        assert files[f"entries/{i}.json"] == await log.entry(i)


async def test_scope_errors(db: Database, log: Log) -> None:
    await write_story(log)
    key = Ed25519PrivateKey.generate()
    for scope in (Scope("run", run="run_nope"), Scope("model", model="model_nope"),
                  Scope("dataset", dataset="ds_nope"),
                  Scope("time", since="2001-01-01T00:00:00Z", until="2001-01-02T00:00:00Z")):
        with pytest.raises(NotFound):
            await build_bundle(db, log, scope, evidence_key=key, settings=Settings.load())
    from app.evidence.scope import ScopeError

    for bad in ({"kind": "galaxy"}, {"kind": "run"}, {"kind": "dataset", "dataset": "d", "version": 0},
                {"kind": "time", "since": "2002-01-01T00:00:00Z", "until": "2001-01-01T00:00:00Z"},
                {"kind": "time", "since": "yesterday", "until": "today"}, {"run": "r", "colour": "red"}, []):
        with pytest.raises(ScopeError):
            Scope.from_json(bad)


async def test_openssl_verifies_the_bundled_timestamp(db: Database, log: Log, local_tsa: LocalTSA,
                                                      tmp_path: Path) -> None:
    await write_story(log)
    built = await build_bundle(db, log, Scope("run", run="run_b"), evidence_key=Ed25519PrivateKey.generate(),
                               settings=Settings.load())
    files = members(built.data)
    manifest = json.loads(files["manifest.json"])
    pins(tmp_path, log, local_tsa, Ed25519PrivateKey.generate())  # writes the TSA root, known out of band
    for cp in manifest["checkpoints"]:
        (tmp_path / "cp.note").write_bytes(files[cp["note"]])
        (tmp_path / "cp.tsr").write_bytes(files[cp["timestamp"]])
        ok = subprocess.run(["openssl", "ts", "-verify", "-data", "cp.note", "-in", "cp.tsr",
                             "-CAfile", "root.pem"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
        assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok.stdout + ok.stderr
    (tmp_path / "cp.note").write_bytes(files[manifest["checkpoints"][0]["note"]] + b"x")
    bad = subprocess.run(["openssl", "ts", "-verify", "-data", "cp.note", "-in", "cp.tsr",
                          "-CAfile", "root.pem"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0


async def test_api_returns_a_verifiable_zip(db: Database, log: Log, local_tsa: LocalTSA, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLHF_AUDIT_KEYS_DIR", str(tmp_path / "keys"))
    keyring = Keyring(tmp_path / "keys")
    await write_story(log)
    await create_account(db, log, "audrey", "auditor", "correct horse battery",
                         pseudonymizer=keyring.pseudonymizer)
    token = (await create_token(db, log, "audrey", None, pseudonymizer=keyring.pseudonymizer)).token
    auth = {"Authorization": f"Bearer {token}"}
    async with serving(log) as client:
        keys = (await client.get("/log/v1/keys")).json()
        assert keys["log_vkey"] == log.signer.verifier.vkey and keys["tsa_certificates"]
        assert keys["evidence_key"] == public_key_pem(keyring.evidence_signer.public_key()).decode()
        r = await client.post("/api/v1/bundles", json={"kind": "model", "model": "model_a"}, headers=auth)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/zip"
        assert 'filename="evidence-model-model_a-' in r.headers["content-disposition"]
        report = verify_bundle(r.content, log_key=keys["log_vkey"],
                               tsa_roots=[keys["tsa_certificates"].encode()],
                               evidence_key=keys["evidence_key"].encode())
        assert report.ok, report.text()
        newest = json.loads(await log.entry((await log.sequenced_size()) - 1))
        assert newest["kind"] == "bundle.created" and newest["role"] == "auditor"
        assert newest["actor"] == keyring.pseudonymizer.pseudonym("account:audrey")
        for body, status in (({"kind": "run"}, 400), ({"kind": "run", "run": "run_zzz"}, 404),
                             ({"colour": "red"}, 400)):
            bad = await client.post("/api/v1/bundles", json=body, headers=auth)
            assert bad.status_code == status, bad.text
            assert bad.headers["content-type"].startswith("application/problem+json")
        assert (await client.post("/api/v1/bundles", content=b"{", headers=auth)).status_code == 400
        assert (await client.post("/api/v1/bundles", json={"run": "run_a"})).status_code == 401


def _cli(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``rlhf-audit``; ``verify-bundle`` through its own command alone, as an auditor without the
    server's stack would run it."""
    exe = [shutil.which("rlhf-audit", path=str(ROOT / ".venv" / "bin")) or "rlhf-audit"]
    if args[0] == "verify-bundle":
        exe = [sys.executable, "-c", "from app.core.commands import run; from app.evidence.commands import "
               "verify_bundle; run(verify_bundle)"]
        args = args[1:]
    env = {**os.environ, "RLHF_AUDIT_HOME": str(home)}
    env.pop("RLHF_AUDIT_DATABASE_URL", None)
    return subprocess.run([*exe, *args], input=stdin, env=env, capture_output=True, text=True,
                          timeout=120, cwd=home)


def test_cli_creates_and_verifies_bundles(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _cli(tmp_path, "--home", str(home), "init", "--origin", "cli.example/log").returncode == 0
    lines = [event("run.metrics", WORKER, run="run_cli", steps=[{"step": i}]) for i in range(20)]
    lines.append(event("run.metrics", WORKER, run="run_other", steps=[{"step": 0}]))
    appended = _cli(home, "append", stdin="".join(json.dumps(e) + "\n" for e in lines))
    assert appended.returncode == 0, appended.stderr
    made = _cli(home, "bundle", "create", "--run", "run_cli", "-o", "b.zip")
    assert made.returncode == 0, made.stderr
    assert "21 entries" in made.stderr  # the run's 20 and the evidence key's (recorded by the build)
    vkey = (home / "log.vkey").read_text().strip()
    ok = _cli(home, "verify-bundle", "b.zip", "--log-key", vkey, "--tsa-root", str(home / "tsa" / "root.pem"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "VERIFIED" in ok.stdout and "21 entries are in checkpoint" in ok.stdout
    assert "evidence key was taken from the bundle" in ok.stdout  # not pinned: it says so
    stranger = Signer.generate("other.example/log").verifier.vkey  # a well-formed key, not the log's
    other = _cli(home, "verify-bundle", "b.zip", "--log-key", stranger)
    assert other.returncode == 1 and "FAIL  log-key" in other.stdout
    missing = _cli(home, "bundle", "create", "--run", "run_missing")
    assert missing.returncode != 0 and "run_missing" in missing.stderr and "Traceback" not in missing.stderr


async def test_batched_proofs_equal_single_proofs(log: Log) -> None:
    await log.append([{"kind": "t", "i": i} for i in range(700)])
    await log.integrate()
    wanted = [0, 1, 255, 256, 511, 600, 699, 3, 3]
    batched = await log.inclusion_proofs(wanted, 700)
    assert batched == [await log.inclusion_proof(i, 700) for i in wanted]
    with pytest.raises(NotFound):
        await log.inclusion_proofs([700], 700)


async def test_third_party_tsa_needs_its_root_pinned(db: Database, store: Store, signer: Signer,
                                                     tmp_path: Path, openssl_tsa: tuple[str, Path]) -> None:
    """Timestamps from OpenSSL's TSA (not ours): the bundle carries the certificate its tokens embed
    but no root, so both verifiers need --tsa-root, and then accept."""
    url, ca = openssl_tsa
    tsa = HttpTSA(url)
    log = Log(store, signer, tsas=[tsa], interval=0.05)
    try:
        await write_story(log)
        key = Ed25519PrivateKey.generate()
        built = await build_bundle(db, log, Scope("dataset", dataset="ds_helpful"), evidence_key=key,
                                   record_event=False, settings=Settings.load())
    finally:
        await tsa.aclose()
    files = members(built.data)
    manifest = json.loads(files["manifest.json"])
    assert all(c["tsa"] == tsa.name and c["timestamp"] for c in manifest["checkpoints"])
    assert files["keys/tsa-chain.pem"].count(b"BEGIN CERTIFICATE") == 1  # the TSA's, not the root
    (tmp_path / "evidence.pem").write_bytes(public_key_pem(key.public_key()))
    pinned = ["--log-key", signer.verifier.vkey, "--tsa-root", str(ca), "--evidence-key",
              str(tmp_path / "evidence.pem")]
    report = verify_bundle(built.data, log_key=signer.verifier.vkey, tsa_roots=[ca.read_bytes()],
                           evidence_key=public_key_pem(key.public_key()))
    assert report.ok, report.text()
    proc = standalone(tmp_path, built.data, *pinned)
    assert proc.returncode == 0 and "by CN=Test TSA" in proc.stdout, proc.stdout + proc.stderr
    assert "root: CN=Test Root CA" in proc.stdout
    unpinned = verify_bundle(built.data)
    assert unpinned.failed == ["timestamps"] and "--tsa-root" in unpinned.text()
    proc = standalone(tmp_path, built.data)
    assert proc.returncode == 1 and "FAIL  timestamps" in proc.stdout and "--tsa-root" in proc.stdout

