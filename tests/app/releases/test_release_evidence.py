"""A released model's evidence, each artefact checked by its own ecosystem's tool, nothing of ours:

- the OpenSSF model-signing signature by the ``model_signing`` CLI (a subprocess) over the model
  directory as stored, which fails after one byte of a model file changes; its resources are the
  ``run.completed`` digests;
- the SLSA provenance by securesystemslib's DSSE verifier, its Statement and predicate by the
  in-toto attestation library's schemas (protobuf, unknown fields refused);
- the COSE receipt by pycose, against the log's signed checkpoint (root recomputed from the entry
  and the proof; the checkpoint's signature checked with the log key).

Training is real (tiny model)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from app.core.errors import Conflict
from app.core.keyring import Keyring
from app.jobs import get_job, submit
from app.jobs.queue import LocalQueue
from app.objects import FileStore
from app.oversight.service import approve_release, release_model
from app.releases.service import attest_release, prefix_of
from app.worker.local import run_local_worker
from ledger.checkpoint import Checkpoint
from ledger.log import Log
from ledger.note import open_note
from tests.support.databases import database_of
from tests.support.jobs import ADMIN, OVERSEER_A, OVERSEER_B, dataset, events, spec, worker_ctx
from tests.support.paths import ROOT

WHY = "evaluation passed on the held-out probe set"
MODEL_SIGNING = shutil.which("model_signing", path=str(ROOT / ".venv" / "bin")) or "model_signing"


async def _released(log: Log, keyring: Keyring, tmp_path: Path) -> tuple[str, str, FileStore]:
    """Train a tiny model for real, approve it (not attested yet), release it: (run, model, store)."""
    db = database_of(log)
    ds = await dataset(log, keyring, 16)
    job = await submit(db, log, keyring, LocalQueue(), spec(ds), ADMIN)
    ctx = worker_ctx(log, keyring, tmp_path)
    await run_local_worker(ctx, burst=True)
    model = (await get_job(db, job.run)).model
    assert model is not None
    await approve_release(db, log, model, WHY, OVERSEER_A)
    with pytest.raises(Conflict, match=f"model {model} is not released \\(approved\\)"):
        await attest_release(db, log, keyring, ctx["objects"], model)
    assert await events(log, kind="keys.release_key") == []  # nothing signed
    await release_model(db, log, model, OVERSEER_B)
    return job.run, model, ctx["objects"]  # type: ignore[return-value]


def _verify_model(model_dir: Path, release: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MODEL_SIGNING, "verify", "key", str(model_dir), "--signature",
                           str(release / "model.sig"), "--public_key", str(release / "release-key.pem")],
                          capture_output=True, text=True, timeout=300)


def _payload(envelope: dict[str, Any]) -> dict[str, Any]:
    return json.loads(base64.b64decode(envelope["payload"]))  # type: ignore[no-any-return]


async def test_a_release_is_signed_attested_and_proved_for_other_ecosystems(log: Log, tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    run, model, objects = await _released(log, keyring, tmp_path)
    done = await attest_release(database_of(log), log, keyring, objects, model)
    release, model_dir = tmp_path / "release", tmp_path / "model"
    objects.get_dir(prefix_of(model), release)
    objects.get_dir(f"runs/{run}/final", model_dir)
    (completed,) = await events(log, run, "run.completed")
    (released,) = await events(log, kind="model.released")
    started = await events(log, run, "run.started")
    decisions = await events(log, kind="oversight.decision")
    (approval,) = [e for e in decisions if e["action"] == "approve_release"]
    (key_event,) = await events(log, kind="keys.release_key")

    # 1. model-signing: the resources are the logged digests; its own CLI verifies the directory
    signed = _payload(json.loads((release / "model.sig").read_bytes())["dsseEnvelope"])
    assert {r["name"]: f"{r['algorithm']}:{r['digest']}" for r in signed["predicate"]["resources"]} \
        == completed["files"]
    ok = _verify_model(model_dir, release)
    assert ok.returncode == 0 and "Verification succeeded" in ok.stdout, ok.stdout + ok.stderr
    weights = max(model_dir.rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else -1)
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    bad = _verify_model(model_dir, release)
    assert bad.returncode != 0 and "Hash mismatch" in bad.stdout + bad.stderr, bad.stdout + bad.stderr

    # 2. SLSA provenance: securesystemslib verifies the DSSE envelope; in-toto's schemas parse it
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey

    pem = (release / "release-key.pem").read_bytes()
    assert key_event["key"] == pem.decode() and key_event["key_id"] == done.key_id
    key = SSlibKey.from_crypto(load_pem_public_key(pem), keyid=done.key_id)
    envelope = (release / "provenance.dsse.json").read_bytes()
    raw = json.loads(envelope)
    # (from_dict mutates the dict it reads)
    assert set(Envelope.from_dict(json.loads(envelope)).verify([key], 1)) == {done.key_id}
    body = _payload(raw)
    Statement.copy_from_pb(json_format.ParseDict(body, statement_pb2.Statement())).validate()
    # the SLSA v1 schema, unknown fields refused
    predicate = json_format.ParseDict(body["predicate"], provenance_pb2.Provenance())
    assert body["predicateType"] == "https://slsa.dev/provenance/v1"
    assert body["subject"] == [{"name": model, "digest": {"sha256": signed["subject"][0]["digest"]["sha256"]},
                                "annotations": {"rlhfAuditRoot": completed["root"]}}]
    assert predicate.run_details.metadata.invocation_id == run
    build = body["predicate"]["buildDefinition"]
    assert build["externalParameters"]["spec"]["dataset"] == started[0]["dataset"]
    deps = {d["name"]: d.get("digest") for d in build["resolvedDependencies"]}
    code = started[0].get("code") or {}
    if code.get("repository"):  # a checkout with a remote (CI's clone): the source at its commit
        assert deps["code"] == {"gitCommit": code["commit"]}
    assert deps[f"dataset/{started[0]['dataset']}/v{started[0]['dataset_version']}"] \
        == {"rlhfAuditMerkleRoot": started[0]["dataset_root"]}
    assert {n.removeprefix("base_model/"): "sha256:" + d["sha256"] for n, d in deps.items()
            if n.startswith("base_model/")} == started[0]["base_model"]["files"]
    byproducts = {b["annotations"]["leafIndex"]: b for b in body["predicate"]["runDetails"]["byproducts"]}
    assert {completed["_i"], released["_i"], approval["_i"], key_event["_i"], *(s["_i"] for s in started)} \
        <= set(byproducts)
    for i, b in byproducts.items():
        assert b["digest"]["sha256"] == hashlib.sha256(await log.entry(i)).hexdigest()
        assert b["annotations"]["logOrigin"] == log.origin
    forged = {**raw, "payload": base64.b64encode(json.dumps({**body, "subject": []}).encode()).decode()}
    with pytest.raises(VerificationError):
        Envelope.from_dict(forged).verify([key], 1)

    # 3. COSE receipt: pycose checks the signature over the root recomputed from the entry and the
    # proof; that root is the one in the checkpoint the log key signed
    from pycose.algorithms import EdDSA
    from pycose.headers import Algorithm
    from pycose.messages import CoseMessage

    from app.releases.receipts import verify_receipt

    receipt = (release / "release.receipt.cose").read_bytes()
    assert CoseMessage.decode(receipt).phdr[Algorithm] is EdDSA
    entry = (release / "release-entry.json").read_bytes()
    assert entry == await log.entry(released["_i"])
    note = open_note((release / "checkpoint.note").read_bytes(), [log.signer.verifier])
    checkpoint = Checkpoint.parse(note.text)
    proved = verify_receipt(receipt, entry, log.signer.verifier.public_key)
    assert (proved.leaf_index, proved.tree_size, proved.root) \
        == (released["_i"], checkpoint.size, checkpoint.root_hash)
    with pytest.raises(ValueError, match="signature"):
        verify_receipt(receipt, await log.entry(approval["_i"]), log.signer.verifier.public_key)


async def test_rotating_the_release_key_retires_it_and_logs_the_new_one(log: Log, tmp_path: Path) -> None:
    from app.events.index import EventIndex
    from app.events.recording import SYSTEM
    from app.releases.keys import key_id, public_key_pem, record_release_key, rotate_release_key

    keyring = Keyring(tmp_path / "keys")
    index = EventIndex(database_of(log), log)
    old = keyring.release_signer
    first = await record_release_key(log, index, old)
    assert await record_release_key(log, index, old) == first  # one event per key
    rotated = await rotate_release_key(log, index, keyring, SYSTEM)
    new = keyring.release_signer
    assert key_id(new.public_key()) == rotated.key_id != key_id(old.public_key()) == rotated.previous_key_id
    assert Keyring(tmp_path / "keys").release_signer.private_numbers() == new.private_numbers()
    retired = Path(rotated.retired_file)
    assert retired.parent == keyring.retired_dir and oct(retired.stat().st_mode & 0o777) == "0o600"
    from app.core.keyring import release_key_from_seed

    assert release_key_from_seed(retired.read_bytes()).private_numbers() == old.private_numbers()
    logged = await events(log, kind="keys.release_key")
    assert [(e["key"], e.get("replaces")) for e in logged] == [
        (public_key_pem(old.public_key()).decode(), None),
        (public_key_pem(new.public_key()).decode(), rotated.previous_key_id)]


def test_public_keys_prints_the_release_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    exe = shutil.which("rlhf-audit", path=str(ROOT / ".venv" / "bin")) or "rlhf-audit"
    env = {k: v for k, v in os.environ.items() if k not in ("RLHF_AUDIT_DATABASE_URL", "RLHF_AUDIT_KEYS_DIR")}
    made = subprocess.run([exe, "--home", str(home), "init", "--origin", "keys.example/log"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    shown = subprocess.run([exe, "--home", str(home), "public-keys"], env=env, capture_output=True, text=True,
                           timeout=120)
    assert shown.returncode == 0, shown.stderr
    keys = json.loads(shown.stdout)
    from app.releases.keys import key_id, public_key_pem

    signer = Keyring(home / "keys").release_signer.public_key()
    assert keys["release_key"] == public_key_pem(signer).decode()
    assert keys["release_key_id"] == key_id(signer)
    assert "BEGIN PUBLIC KEY" in keys["release_key"]
    refused = subprocess.run([exe, "--home", str(home), "releases", "attest", "model_nope"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "no model 'model_nope'" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
