"""Rotating the evidence-signing key: the old key kept in ``<keys>/retired/``, the new one on the log at
once (``keys.evidence_key`` naming the key it replaces); bundles built before and after both verify,
each against the key it carries and that key's own log entry."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core.database import Database
from app.core.keyring import Keyring
from app.core.settings import Settings
from app.events.index import EventIndex
from app.events.recording import SYSTEM
from app.evidence import dsse
from app.evidence.builder import build_bundle
from app.evidence.scope import Scope
from app.evidence.verify import EVIDENCE_KEY_EVENT, verify_bundle
from app.keys.evidence_rotation import rotate_evidence_key
from ledger._internal.local_tsa import LocalTSA
from ledger.log import Log
from tests.support.cli_run import cli, cli_env
from tests.support.evidence import members, pins, write_story
from tests.support.log_reading import events


async def test_rotating_the_evidence_key_keeps_old_and_new_bundles_verifiable(
        db: Database, log: Log, local_tsa: LocalTSA, tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    await write_story(log)
    index = EventIndex(db, log)
    old = keyring.evidence_signer
    before = await build_bundle(db, log, Scope("run", run="run_a"), evidence_key=old, index=index,
                                settings=Settings())

    rotated = await rotate_evidence_key(log, index, keyring, SYSTEM)
    new = keyring.evidence_signer
    old_id, new_id = dsse.key_id(old.public_key()), dsse.key_id(new.public_key())
    assert rotated.previous_key_id == old_id != new_id == rotated.key_id
    assert Keyring(tmp_path / "keys").evidence_signer.private_bytes_raw() == new.private_bytes_raw()
    retired = Path(rotated.retired_file)
    assert retired.parent == keyring.retired_dir and oct(retired.stat().st_mode & 0o777) == "0o600"
    assert Ed25519PrivateKey.from_private_bytes(retired.read_bytes()).private_bytes_raw() == \
        old.private_bytes_raw()

    logged = [e for e in await events(log) if e["kind"] == EVIDENCE_KEY_EVENT]  # on the log at once
    assert [(e["key_id"], e.get("replaces")) for e in logged] == [(old_id, None), (new_id, old_id)]
    assert logged[1]["key"] == dsse.public_key_pem(new.public_key()).decode()

    after = await build_bundle(db, log, Scope("run", run="run_a"), evidence_key=keyring.evidence_signer,
                               index=index, settings=Settings())
    assert json.loads(members(after.data)["manifest.json"])["evidence_key_entry"] == rotated.leaf_index
    for bundle, key in ((before, old), (after, new)):
        p = pins(tmp_path, log, local_tsa, key)
        report = verify_bundle(bundle.data, log_key=p.log_vkey, tsa_roots=[p.tsa_root],
                               evidence_key=p.evidence)
        assert report.ok, report.text()
    wrong = verify_bundle(before.data, log_key=p.log_vkey, tsa_roots=[p.tsa_root], evidence_key=p.evidence)
    assert "attestation" in wrong.failed  # the old bundle is not the new key's
    assert [e["key_id"] for e in await events(log) if e["kind"] == EVIDENCE_KEY_EVENT] == [old_id, new_id]


def test_rotate_evidence_key_command(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    cli(env, "init", "--origin", "keys.example/log")
    before = json.loads(cli(env, "public-keys").stdout)
    done = cli(env, "keys", "rotate-evidence-key")
    assert b"rotated the evidence key" in done.stderr and b"retired" in done.stderr, done.stderr
    after = json.loads(cli(env, "public-keys").stdout)
    assert after["evidence_key_id"] != before["evidence_key_id"]
    assert (tmp_path / "home" / "keys" / "retired" / f"evidence-{before['evidence_key_id']}.key").exists()
    refused = cli(env, "keys", "rotate-evidence-key", "--as", "nobody", ok=False)
    assert b"nobody" in refused.stderr, refused.stderr
