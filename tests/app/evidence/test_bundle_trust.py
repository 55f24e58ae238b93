"""What a bundle's trust rests on, checked by both offline verifiers (issue 16).

- A pin is a pin: an empty, unreadable or unparsable ``--evidence-key``/``--log-key`` is an error,
  never a silent fall-back to the copy inside the bundle.
- The evidence key is on the log (``keys.evidence_key``): a bundle carries that entry with its
  proof, and a key the log never recorded fails the ``evidence-key`` check even when the verifier
  trusts the bundle's copy of the key.
- Every entry the report cites is in the bundle, below its tree size, and its links lead to files
  inside the bundle; a citation that is not fails the ``citations`` check, naming it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core.database import Database
from app.core.keyring import Keyring
from app.core.settings import Settings
from app.evidence import dsse
from app.evidence.builder import build_bundle
from app.evidence.commands import verify_bundle as verify_bundle_command
from app.evidence.scope import Scope
from app.evidence.verify import verify_bundle
from ledger._internal.local_tsa import LocalTSA
from ledger.log import Log
from tests.app.evidence.test_bundle_tamper import forge, rezip
from tests.support.evidence import Pins, members, pins, standalone, write_story
from tests.support.paths import ROOT

Files = dict[str, bytes]
_LINK = re.compile(rb"(?:/log/v1/proof/|entries/)(\d+)")


def cited(files: Files) -> set[int]:
    """Every leaf index the bundled report links to or lists under ``entries``."""
    out = {int(i) for name in ("report.json", "report.html") for i in _LINK.findall(files[name])}

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "entries" and isinstance(value, list):
                    out.update(v for v in value if isinstance(v, int))
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(files["report.json"]))
    return out


def manifest(files: Files) -> dict[str, object]:
    return json.loads(files["manifest.json"])


def edit_report(files: Files) -> None:
    """What the stranger changes: the report's verdict."""
    files["report.json"] = files["report.json"].replace(b'"status": "fail"', b'"status": "pass"') + b" "


@pytest.fixture
async def built(db: Database, log: Log, local_tsa: LocalTSA,
                tmp_path: Path) -> tuple[bytes, Pins, Ed25519PrivateKey]:
    await write_story(log)
    key = Ed25519PrivateKey.generate()
    bundle = await build_bundle(db, log, Scope("run", run="run_a"), evidence_key=key,
                                settings=Settings.load())
    return bundle.data, pins(tmp_path, log, local_tsa, key), key


def _verify_command(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(verify_bundle_command, list(args))
    return result.exit_code, result.output


async def test_an_empty_or_unparsable_pin_is_an_error_never_a_fall_back(
        built: tuple[bytes, Pins, Ed25519PrivateKey], tmp_path: Path) -> None:
    data, p, _ = built
    files = members(data)
    edit_report(files)
    forged = rezip(forge(files, Ed25519PrivateKey.generate()))  # a stranger's edit, re-signed by them
    (tmp_path / "forged.zip").write_bytes(forged)
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "garbage").write_text("not a key at all\n")
    (tmp_path / "adir").mkdir()
    root = str(tmp_path / "root.pem")
    for option, bad in (("--evidence-key", "empty"), ("--evidence-key", "garbage"),
                        ("--evidence-key", "adir"), ("--log-key", "empty"), ("--log-key", "garbage")):
        others = ["--log-key", p.log_vkey] if option == "--evidence-key" else \
            ["--evidence-key", str(tmp_path / "evidence.pem")]
        args = [option, str(tmp_path / bad), *others, "--tsa-root", root]
        proc = standalone(tmp_path, forged, *args)
        assert proc.returncode == 2, (option, bad, proc.stdout, proc.stderr)
        assert "VERIFIED" not in proc.stdout and option in proc.stderr and "Traceback" not in proc.stderr
        code, out = _verify_command(str(tmp_path / "forged.zip"), *args)
        assert code == 2 and "VERIFIED" not in out and option in out, (option, bad, out)
    # the library: an empty pin is a pin that matches nothing
    assert "attestation" in verify_bundle(forged, log_key=p.log_vkey, evidence_key=b"").failed
    assert "log-key" in verify_bundle(data, log_key="", evidence_key=p.evidence).failed


async def test_the_bundle_carries_the_evidence_key_as_recorded_on_the_log(
        db: Database, log: Log, built: tuple[bytes, Pins, Ed25519PrivateKey], tmp_path: Path) -> None:
    data, p, key = built
    files = members(data)
    m = manifest(files)
    at = m["evidence_key_entry"]
    assert isinstance(at, int) and at < m["tree_size"]  # type: ignore[operator]
    entry = files[f"entries/{at}.json"]
    assert entry == await log.entry(at) and f"proofs/{at}.tlog-proof" in files
    recorded = json.loads(entry)
    assert recorded["kind"] == "keys.evidence_key" and recorded["actor"] == "system"
    assert recorded["key"] == dsse.public_key_pem(key.public_key()).decode()
    assert recorded["key_id"] == dsse.key_id(key.public_key())
    report = verify_bundle(data, log_key=p.log_vkey, tsa_roots=[p.tsa_root], evidence_key=p.evidence)
    assert report.ok and "evidence-key" in [c.name for c in report.checks], report.text()
    proc = standalone(tmp_path, data, *p.files)
    assert proc.returncode == 0 and "OK    evidence-key" in proc.stdout, proc.stdout + proc.stderr
    assert f"entry {at}" in proc.stdout

    # a key is recorded once; a new key (rotation) gets its own entry and verifies against it
    again = await build_bundle(db, log, Scope("dataset", dataset="ds_other"), evidence_key=key,
                               record_event=False, settings=Settings.load())
    assert manifest(members(again.data))["evidence_key_entry"] == at
    new_key = Ed25519PrivateKey.generate()
    rotated = await build_bundle(db, log, Scope("run", run="run_a"), evidence_key=new_key,
                                 record_event=False, settings=Settings.load())
    new_at = manifest(members(rotated.data))["evidence_key_entry"]
    assert isinstance(new_at, int) and new_at > at
    assert json.loads(await log.entry(new_at))["key_id"] == dsse.key_id(new_key.public_key())
    ok = verify_bundle(rotated.data, log_key=p.log_vkey, tsa_roots=[p.tsa_root],
                       evidence_key=dsse.public_key_pem(new_key.public_key()))
    assert ok.ok, ok.text()


async def test_a_key_the_log_never_recorded_fails_even_when_the_bundle_copy_is_trusted(
        built: tuple[bytes, Pins, Ed25519PrivateKey], tmp_path: Path) -> None:
    """The stranger re-signs with their own key and ships it in keys/: with the log key pinned
    and no evidence key pinned, the log says which key is the operator's."""
    data, p, _ = built
    files = members(data)
    edit_report(files)
    forged = rezip(forge(files, Ed25519PrivateKey.generate()))
    report = verify_bundle(forged, log_key=p.log_vkey, tsa_roots=[p.tsa_root])
    assert "attestation" not in report.failed and "evidence-key" in report.failed, report.text()
    proc = standalone(tmp_path, forged, "--log-key", p.log_vkey, "--tsa-root", str(tmp_path / "root.pem"))
    assert proc.returncode == 1 and "FAIL  evidence-key" in proc.stdout, proc.stdout
    assert "OK    attestation" in proc.stdout


async def test_a_bundle_without_the_key_entry_verifies_with_a_stated_warning(
        built: tuple[bytes, Pins, Ed25519PrivateKey], tmp_path: Path) -> None:
    """Bundles made before keys.evidence_key existed: the key is not bound, and the account says so."""
    data, p, key = built
    files = members(data)
    m = json.loads(files["manifest.json"])
    del m["evidence_key_entry"]
    files["manifest.json"] = json.dumps(m, indent=1, sort_keys=True).encode() + b"\n"
    old = rezip(forge(files, key))
    report = verify_bundle(old, log_key=p.log_vkey, tsa_roots=[p.tsa_root], evidence_key=p.evidence)
    assert report.ok, report.text()
    assert any("not bound to the log" in w for w in report.warnings), report.warnings
    proc = standalone(tmp_path, old, *p.files)
    assert proc.returncode == 0 and "VERIFIED" in proc.stdout, proc.stdout
    assert "WARN" in proc.stdout and "not bound to the log" in proc.stdout


async def test_every_citation_is_in_the_bundle_below_its_tree_size(
        db: Database, log: Log, local_tsa: LocalTSA, tmp_path: Path) -> None:
    await write_story(log)
    key = Ed25519PrivateKey.generate()
    p = pins(tmp_path, log, local_tsa, key)
    for scope in (Scope("run", run="run_a"), Scope("model", model="model_a"), Scope("run", run="run_b")):
        # recorded: each build's bundle.created lies beyond the next bundle's proofs' checkpoint
        built = await build_bundle(db, log, scope, evidence_key=key, settings=Settings.load())
        files = members(built.data)
        size = manifest(files)["tree_size"]
        refs = cited(files)
        assert refs, scope
        for i in refs:
            assert i < size and f"entries/{i}.json" in files and f"proofs/{i}.tlog-proof" in files, (scope, i)
        for name in ("report.json", "report.html"):  # links lead inside the unzipped bundle
            assert b"/log/v1/" not in files[name], (scope, name)
        assert b'href="entries/' in files["report.html"]
        report = verify_bundle(built.data, log_key=p.log_vkey, tsa_roots=[p.tsa_root],
                               evidence_key=p.evidence)
        assert report.ok, report.text()
        proc = standalone(tmp_path, built.data, *p.files)
        assert proc.returncode == 0 and "OK    citations" in proc.stdout, proc.stdout


async def test_a_citation_outside_the_bundle_fails_both_verifiers_naming_it(
        built: tuple[bytes, Pins, Ed25519PrivateKey], tmp_path: Path) -> None:
    data, p, key = built
    size = manifest(members(data))["tree_size"]
    assert isinstance(size, int)
    inside = {int(n[len("entries/"):-len(".json")]) for n in members(data) if n.startswith("entries/")}
    absent = min(set(range(size)) - inside)
    for bad in (absent, size):
        files = members(data)
        first = min(cited(files))
        for name in ("report.json", "report.html"):
            files[name] = files[name].replace(b"entries/%d.json" % first, b"entries/%d.json" % bad)
        tampered = rezip(forge(files, key))  # re-signed by the operator's own key: only the check catches it
        report = verify_bundle(tampered, log_key=p.log_vkey, tsa_roots=[p.tsa_root], evidence_key=p.evidence)
        assert report.failed == ["citations"], report.text()
        assert f"#{bad}" in report.text()
        proc = standalone(tmp_path, tampered, *p.files)
        assert proc.returncode == 1 and "FAIL  citations" in proc.stdout, proc.stdout
        assert f"#{bad}" in proc.stdout


def test_public_keys_prints_the_evidence_key(tmp_path: Path) -> None:
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
    signer = Keyring(home / "keys").evidence_signer.public_key()
    assert keys["log_vkey"].startswith("keys.example/log+")
    assert keys["evidence_key"] == dsse.public_key_pem(signer).decode()
    assert keys["evidence_key_id"] == dsse.key_id(signer)
