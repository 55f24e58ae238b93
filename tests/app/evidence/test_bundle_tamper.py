"""Tampered evidence bundles: both offline verifiers refuse each kind of change, naming what failed.

Two kinds of attacker. A careless one edits a file and leaves the rest (the manifest's hashes give
it away). A careful one also rewrites the manifest's hashes and re-signs the attestation with a key
of their own, replacing the copy in ``keys/``: only pinning the operator's keys out of band catches
that at the attestation, and the deeper check (proof, signature, timestamp) still fails on its own.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core.database import Database
from app.core.settings import Settings
from app.events.index import EventIndex
from app.evidence import dsse
from app.evidence.builder import build_bundle, record_evidence_key
from app.evidence.scope import Scope
from app.evidence.verify import verify_bundle
from ledger._internal.local_tsa import LocalTSA
from ledger.log import Log
from ledger.note import Signer, sign_note
from tests.support.evidence import Pins, members, pins, standalone, write_story

Files = dict[str, bytes]


def rezip(files: Files) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def forge(files: Files, key: Ed25519PrivateKey) -> Files:
    """What a careful attacker does after an edit: rehash the manifest, re-sign with their own key."""
    manifest = json.loads(files["manifest.json"])
    manifest["files"] = {n: hashlib.sha256(files[n]).hexdigest() for n in manifest["files"] if n in files}
    files["keys/evidence-key.pem"] = dsse.public_key_pem(key.public_key())
    manifest["files"]["keys/evidence-key.pem"] = hashlib.sha256(files["keys/evidence-key.pem"]).hexdigest()
    files["manifest.json"] = json.dumps(manifest, indent=1, sort_keys=True).encode()
    old = json.loads(base64.b64decode(json.loads(files["attestation.dsse.json"])["payload"]))
    subjects = {"manifest.json": files["manifest.json"], **{n: files[n] for n in manifest["report"]}}
    files["attestation.dsse.json"] = dsse.sign_envelope(dsse.statement(subjects, old["predicate"]), key)
    return files


def _entry(files: Files) -> str:
    """An entry of run_a in the middle of the bundle."""
    names = sorted(n for n in files if n.startswith("entries/") and b'"run_a"' in files[n])
    return names[len(names) // 2]


def change_entry(files: Files) -> None:
    name = _entry(files)
    files[name] = files[name].replace(b'"run_a"', b'"run_z"')


def change_proof_hash(files: Files) -> None:
    name = "proofs/" + _entry(files).split("/")[1].replace(".json", ".tlog-proof")
    lines = files[name].split(b"\n")
    h = bytearray(base64.b64decode(lines[2]))
    h[0] ^= 1
    lines[2] = base64.b64encode(bytes(h))
    files[name] = b"\n".join(lines)


def _checkpoint(files: Files) -> str:
    return json.loads(files["manifest.json"])["checkpoint"]


def change_checkpoint(files: Files) -> None:
    name = _checkpoint(files)
    origin, size, root, rest = files[name].split(b"\n", 3)
    files[name] = b"\n".join([origin, size, base64.b64encode(hashlib.sha256(root).digest()), rest])


def change_note_signature(files: Files) -> None:
    name = _checkpoint(files)
    body, sig_line = files[name].rstrip(b"\n").rsplit(b"\n", 1)
    prefix, b64 = sig_line.rsplit(b" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    files[name] = body + b"\n" + prefix + b" " + base64.b64encode(bytes(raw)) + b"\n"


def change_dsse_signature(files: Files) -> None:
    env = json.loads(files["attestation.dsse.json"])
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    sig[5] ^= 1
    env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    files["attestation.dsse.json"] = json.dumps(env).encode()


def change_manifest(files: Files) -> None:
    manifest = json.loads(files["manifest.json"])
    manifest["scope"] = {"kind": "run", "run": "run_innocent"}
    files["manifest.json"] = json.dumps(manifest, indent=1, sort_keys=True).encode()


def change_timestamp(files: Files) -> None:
    name = json.loads(files["manifest.json"])["checkpoints"][0]["timestamp"]
    der = bytearray(files[name])
    der[-3] ^= 1  # inside the ECDSA signature of the SignerInfo
    files[name] = bytes(der)


def swap_timestamps(files: Files) -> None:
    first, second = (c["timestamp"] for c in json.loads(files["manifest.json"])["checkpoints"])
    files[first], files[second] = files[second], files[first]


def remove_file(files: Files) -> None:
    del files["proofs/" + _entry(files).split("/")[1].replace(".json", ".tlog-proof")]


def add_file(files: Files) -> None:
    files["entries/999999.json"] = b'{"kind":"run.metrics","run":"run_a"}'


def replace_log_key(files: Files) -> None:
    """Re-sign the checkpoints with another key and ship that key: pinning the real one catches it."""
    fake = Signer.generate(json.loads(files["manifest.json"])["origin"])
    for cp in json.loads(files["manifest.json"])["checkpoints"]:
        body = files[cp["note"]][: files[cp["note"]].index(b"\n\n") + 1]
        files[cp["note"]] = sign_note(body, [fake])
    files["keys/log.vkey"] = (fake.verifier.vkey + "\n").encode()


# (what is changed, the change, forge afterwards, the checks that must fail)
CASES: list[tuple[str, Callable[[Files], None], bool, set[str]]] = [
    ("entry bytes", change_entry, False, {"files", "entries"}),
    ("entry bytes, re-signed", change_entry, True, {"attestation", "entries"}),
    ("proof hash", change_proof_hash, True, {"attestation", "entries"}),
    ("checkpoint root", change_checkpoint, True, {"attestation", "checkpoints"}),
    ("note signature", change_note_signature, True, {"attestation", "checkpoints"}),
    ("DSSE signature", change_dsse_signature, False, {"attestation"}),
    ("manifest", change_manifest, False, {"attestation"}),
    ("timestamp signature", change_timestamp, True, {"attestation", "timestamps"}),
    ("timestamps swapped", swap_timestamps, False, {"files", "timestamps"}),
    ("file removed", remove_file, False, {"files", "entries"}),
    ("file added", add_file, False, {"files", "entries"}),
    ("log key replaced", replace_log_key, True, {"attestation", "log-key"}),
]


@pytest.fixture
async def bundle(db: Database, log: Log, local_tsa: LocalTSA, tmp_path: Path) -> tuple[bytes, Pins]:
    key = Ed25519PrivateKey.generate()
    await record_evidence_key(log, EventIndex(db, log), key)  # as when the home was set up
    await write_story(log)
    built = await build_bundle(db, log, Scope("run", run="run_a"), evidence_key=key, record_event=False,
                               settings=Settings.load())
    return built.data, pins(tmp_path, log, local_tsa, key)


async def test_the_untouched_bundle_verifies(bundle: tuple[bytes, Pins], tmp_path: Path) -> None:
    data, p = bundle
    assert verify_bundle(data, log_key=p.log_vkey, tsa_roots=[p.tsa_root], evidence_key=p.evidence).ok
    assert standalone(tmp_path, rezip(members(data)), *p.files).returncode == 0  # rezipping changes nothing


async def test_both_verifiers_refuse_each_kind_of_tampering(bundle: tuple[bytes, Pins],
                                                            tmp_path: Path) -> None:
    data, p = bundle
    attacker = Ed25519PrivateKey.generate()
    for what, change, careful, expected in CASES:
        files = members(data)
        change(files)
        if careful:
            forge(files, attacker)
        tampered = rezip(files)
        report = verify_bundle(tampered, log_key=p.log_vkey, tsa_roots=[p.tsa_root], evidence_key=p.evidence)
        assert not report.ok, what
        assert expected <= set(report.failed), (what, report.text())
        proc = standalone(tmp_path, tampered, *p.files)
        assert proc.returncode == 1, (what, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr, (what, proc.stderr)
        for name in expected:
            assert f"FAIL  {name}" in proc.stdout, (what, name, proc.stdout)
        assert "FAILED: " in proc.stdout


async def test_careful_forgery_passes_the_signature_checks_only_without_pins(
        bundle: tuple[bytes, Pins], tmp_path: Path) -> None:
    """Why the README says to pin keys: a forger who re-signs everything with their own keys passes
    the attestation and note checks when the verifier trusts the copies inside the bundle."""
    data, p = bundle
    files = members(data)
    replace_log_key(files)
    forge(files, Ed25519PrivateKey.generate())
    for name in [n for n in files if n.startswith("proofs/")]:  # proofs must cite the new note
        head = files[name][: files[name].index(b"\n\n") + 2]
        files[name] = head + files[_checkpoint(files)]
    forged = rezip(forge(files, Ed25519PrivateKey.generate()))
    unpinned = verify_bundle(forged)
    assert {"attestation", "log-key", "checkpoints", "entries"}.isdisjoint(unpinned.failed), unpinned.text()
    assert any("taken from the bundle" in w for w in unpinned.warnings)
    pinned = verify_bundle(forged, log_key=p.log_vkey, tsa_roots=[p.tsa_root], evidence_key=p.evidence)
    assert {"attestation", "log-key"} <= set(pinned.failed)
    proc = standalone(tmp_path, forged, *p.files)
    assert proc.returncode == 1 and "FAIL  log-key" in proc.stdout and "FAIL  attestation" in proc.stdout


async def test_garbage_is_refused_with_a_message(tmp_path: Path) -> None:
    for data in (b"not a zip", rezip({"hello.txt": b"hi"}), rezip({"manifest.json": b"{"})):
        report = verify_bundle(data)
        assert not report.ok and report.failed
        proc = standalone(tmp_path, data)
        assert proc.returncode == 1 and "FAIL" in proc.stdout and "Traceback" not in proc.stderr
