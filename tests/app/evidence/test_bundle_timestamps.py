"""Timestamps are required unless the verifier is told otherwise (issue 16).

A bundle whose checkpoints carry no RFC 3161 timestamp dates nothing: both verifiers fail its
``timestamps`` check, naming each checkpoint, unless the auditor passes ``--allow-untimestamped``
(``allow_untimestamped=True``), which turns it into a stated warning. A stranger who strips the
timestamps from a stamped bundle and re-signs it is caught the same way.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core.database import Database
from app.core.settings import Settings
from app.evidence import dsse
from app.evidence.builder import build_bundle
from app.evidence.commands import verify_bundle as verify_bundle_command
from app.evidence.scope import Scope
from app.evidence.verify import verify_bundle
from ledger._internal.local_tsa import LocalTSA
from ledger._internal.store import Store
from ledger.log import Log
from ledger.note import Signer
from tests.app.evidence.test_bundle_tamper import forge, rezip
from tests.support.databases import pair
from tests.support.evidence import members, pins, standalone, write_story


@pytest.fixture
async def untimestamped_log(db: Database, store: Store, signer: Signer) -> AsyncIterator[Log]:
    """A log with no TSA configured: its checkpoints are never timestamped."""
    log = pair(Log(store, signer, tsas=[], interval=0.05), db)
    yield log
    await log.stop()


def _both(tmp: Path, data: bytes, vkey: str, key: Ed25519PrivateKey,
          *extra: str) -> tuple[int, str, int, str]:
    (tmp / "b.zip").write_bytes(data)
    (tmp / "evidence.pem").write_bytes(dsse.public_key_pem(key.public_key()))
    args = ["--log-key", vkey, "--evidence-key", str(tmp / "evidence.pem"), *extra]
    proc = standalone(tmp, data, *args)
    result = CliRunner().invoke(verify_bundle_command, [str(tmp / "b.zip"), *args])
    return proc.returncode, proc.stdout + proc.stderr, result.exit_code, result.output


async def test_an_untimestamped_bundle_fails_unless_allowed(db: Database, untimestamped_log: Log,
                                                            tmp_path: Path) -> None:
    log = untimestamped_log
    await write_story(log)
    key = Ed25519PrivateKey.generate()
    built = await build_bundle(db, log, Scope("run", run="run_a"), evidence_key=key, settings=Settings.load())
    checkpoints = json.loads(members(built.data)["manifest.json"])["checkpoints"]
    assert checkpoints and all(c["timestamp"] is None for c in checkpoints)
    vkey = log.signer.verifier.vkey

    report = verify_bundle(built.data, log_key=vkey, evidence_key=dsse.public_key_pem(key.public_key()))
    assert report.failed == ["timestamps"], report.text()
    assert f"checkpoint {built.tree_size} carries no RFC 3161 timestamp" in report.text()
    assert "--allow-untimestamped" in report.text()
    code, out, cli_code, cli_out = _both(tmp_path, built.data, vkey, key)
    for c, o in ((code, out), (cli_code, cli_out)):
        assert c == 1 and "FAIL  timestamps" in o and "FAILED: timestamps" in o, o
        assert f"checkpoint {built.tree_size} carries no RFC 3161 timestamp" in o and "Traceback" not in o

    allowed = verify_bundle(built.data, log_key=vkey, evidence_key=dsse.public_key_pem(key.public_key()),
                            allow_untimestamped=True)
    assert allowed.ok, allowed.text()
    assert any("carries no RFC 3161 timestamp" in w and "--allow-untimestamped" in w
               for w in allowed.warnings)
    code, out, cli_code, cli_out = _both(tmp_path, built.data, vkey, key, "--allow-untimestamped")
    for c, o in ((code, out), (cli_code, cli_out)):
        assert c == 0 and "VERIFIED" in o and "OK    timestamps" in o, o
        assert "WARN" in o and "carries no RFC 3161 timestamp" in o


async def test_stripped_timestamps_fail_even_when_re_signed(db: Database, log: Log, local_tsa: LocalTSA,
                                                            tmp_path: Path) -> None:
    await write_story(log)
    key = Ed25519PrivateKey.generate()
    built = await build_bundle(db, log, Scope("run", run="run_a"), evidence_key=key, settings=Settings.load())
    files = members(built.data)
    manifest = json.loads(files["manifest.json"])
    for c in manifest["checkpoints"]:
        del files[c["timestamp"]]
        del manifest["files"][c["timestamp"]]
        c["timestamp"] = c["tsa"] = None
    files["manifest.json"] = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
    stripped = rezip(forge(files, key))  # the operator's own key: only the timestamps are gone
    p = pins(tmp_path, log, local_tsa, key)
    report = verify_bundle(stripped, log_key=p.log_vkey, tsa_roots=[p.tsa_root], evidence_key=p.evidence)
    assert report.failed == ["timestamps"], report.text()
    proc = standalone(tmp_path, stripped, *p.files)
    assert proc.returncode == 1 and "FAILED: timestamps" in proc.stdout, proc.stdout + proc.stderr
