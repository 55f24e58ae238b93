"""Log key rotation: old checkpoints, proofs and timestamps keep verifying; the history is checked."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from app.core.database import open_home
from ledger.audit import audit_log
from ledger.errors import NoteError
from ledger.home import LogHome
from ledger.key_history import KeyHistory
from ledger.key_rotation import rotate_log_key
from ledger.merkle import leaf_hash
from ledger.note import Signer, Verifier, open_note
from ledger.proofs import ConsistencyProof, InclusionProof
from tests.support.asgi import serving
from tests.support.cli_run import cli, cli_env
from tests.support.databases import pair

ORIGIN = "rotation.example/log"


def _verified_keys(note: bytes, *keys: Verifier) -> set[str]:
    return {sig.key_id.hex() for sig in open_note(note, keys).verified}


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    return cli_env(tmp_path / "home", url)


def test_rotation_keeps_old_proofs_and_cross_signs(env: dict[str, str], tmp_path: Path) -> None:
    home = Path(env["RLHF_AUDIT_HOME"])
    cli(env, "init", "--origin", ORIGIN)
    cli(env, "append", input=b'{"kind":"a"}\n{"kind":"b"}\n')
    old = Verifier.from_vkey(json.loads(cli(env, "public-keys").stdout)["log_vkey"])
    old_note = cli(env, "checkpoint").stdout
    assert open_note(old_note, [old])

    rotated = cli(env, "keys", "rotate-log-key")
    new = Verifier.from_vkey(rotated.stdout.decode())
    assert new.name == ORIGIN and new != old
    retired = home / "retired" / f"log-{old.key_id.hex()}.key"
    assert retired.stat().st_mode & 0o777 == 0o600
    assert Signer.from_skey(retired.read_text()).verifier == old
    assert (home / "log.key").stat().st_mode & 0o777 == 0o600

    keys = json.loads(cli(env, "public-keys").stdout)
    assert keys["origin"] == ORIGIN and keys["log_vkey"] == new.vkey and keys["tsa_certificates"]
    history = keys["log_vkey_history"]
    assert [h["vkey"] for h in history] == [old.vkey, new.vkey] and history[0]["first_size"] == 0
    transition = history[1]["first_size"]
    # the rotation is an event on the log, inside the transition checkpoint
    event = json.loads(cli(env, "entry", str(transition - 1)).stdout)
    assert event == {"kind": "log.key_rotated", "previous_vkey": old.vkey, "vkey": new.vkey}

    cli(env, "append", input=b'{"kind":"c"}\n')
    both = cli(env, "checkpoint", "--size", str(transition)).stdout
    assert _verified_keys(both, old) == {old.key_id.hex()}  # an auditor who pinned the old key
    assert _verified_keys(both, new) == {new.key_id.hex()}
    after = cli(env, "checkpoint").stdout
    assert int(after.split(b"\n")[1]) == transition + 1
    assert _verified_keys(after, old, new) == {new.key_id.hex()}
    with pytest.raises(NoteError, match="not signed by any known key"):
        open_note(after, [old])

    # an old entry's proof against the new checkpoint, and the old checkpoint's consistency
    root = base64.b64decode(after.split(b"\n")[2])
    proof = InclusionProof.from_json(json.loads(cli(env, "proof", "inclusion", "0").stdout))
    proof.verify(leaf_hash(cli(env, "entry", "0").stdout), root)
    old_root = base64.b64decode(old_note.split(b"\n")[2])
    cons = json.loads(cli(env, "proof", "consistency", "2", str(transition + 1)).stdout)
    ConsistencyProof.from_json(cons).verify(old_root, root)
    assert b"OK: the log is intact" in cli(env, "verify").stdout  # old timestamps included

    # a second rotation, discarding the old key this time
    newer = Verifier.from_vkey(cli(env, "keys", "rotate-log-key", "--discard-old-key").stdout.decode())
    assert not (home / "retired" / f"log-{new.key_id.hex()}.key").exists()
    cli(env, "append", input=b'{"kind":"d"}\n')
    history = json.loads(cli(env, "public-keys").stdout)["log_vkey_history"]
    assert [h["vkey"] for h in history] == [old.vkey, new.vkey, newer.vkey]
    assert b"OK: the log is intact" in cli(env, "verify").stdout


def test_tampered_key_history_fails_verify(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    history_file = tmp_path / "home" / "log.vkeys"
    cli(env, "init", "--origin", ORIGIN)
    cli(env, "append", input=b'{"kind":"a"}\n')
    cli(env, "append", input=b'{"kind":"b"}\n')
    cli(env, "keys", "rotate-log-key")
    cli(env, "append", input=b'{"kind":"c"}\n')
    genuine = history_file.read_text()
    history = KeyHistory.parse(genuine)
    old, new = history.verifiers()
    transition = history.transitions()[0]

    def verify_fails_with(text: str, expected: str) -> None:
        history_file.write_text(text)
        out = cli(env, "verify", ok=False)
        assert expected in (out.stdout + out.stderr).decode(), (out.stdout + out.stderr).decode()

    # the new key claims the old checkpoints
    verify_fails_with(genuine.replace(f"\n{transition} ", "\n1 "), "not signed by key")
    # the new key's start moved past the cross-signed checkpoint
    verify_fails_with(genuine.replace(f"\n{transition} ", f"\n{transition + 1} "), "not signed by key")
    # someone else's key put in for the old one
    other = Signer.generate(ORIGIN).verifier
    verify_fails_with(genuine.replace(old.vkey, other.vkey), "not signed by key")
    # the history dropped: the old checkpoints no longer verify
    verify_fails_with(f"0 {new.vkey}\n", "not signed by any known key")
    # not a history at all
    verify_fails_with("0 garbage\n", "key history")
    history_file.write_text(genuine)
    assert b"OK: the log is intact" in cli(env, "verify").stdout


async def test_open_logs_follow_a_rotation(database_url: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A log opened before the rotation (a server, an integrator in another process) signs its
    next checkpoint with the new key; one opened after signs with it from the start."""
    monkeypatch.setenv("RLHF_AUDIT_DATABASE_URL", database_url)
    home = LogHome(tmp_path / "home")
    home.init(ORIGIN)
    db, server = await open_home(home, migrate=True)
    pair(server, db)
    try:
        await server.append([{"kind": "before"}])
        await server.integrate()
        old = server.signer.verifier
        rotation = await rotate_log_key(home)
        new = Verifier.from_vkey(rotation.vkey)
        async with serving(server) as client:  # its integrator runs now, after the rotation
            keys = (await client.get("/log/v1/keys")).json()
            assert keys["log_vkey"] == new.vkey and keys["origin"] == ORIGIN
            assert keys["log_vkey_history"] == [{"first_size": 0, "vkey": old.vkey},
                                                {"first_size": rotation.transition.size, "vkey": new.vkey}]
        await server.append([{"kind": "after"}])
        cp = await server.integrate()
        assert cp is not None and cp.size == rotation.transition.size + 1
        assert _verified_keys(cp.note, old, new) == {new.key_id.hex()}
        assert server.key_history.verifiers() == [old, new]
        reopened = await home.open_log()
        try:
            assert reopened.signer.verifier == new
            await reopened.append([{"kind": "later"}])
            later = await reopened.integrate()
            assert later is not None and _verified_keys(later.note, old, new) == {new.key_id.hex()}
            report = await audit_log(reopened, tsa_roots=[home.local_tsa().root_certificate])
            assert report.ok, report.problems
            assert report.checkpoints_checked == 4 and report.timestamps_checked >= 2
        finally:
            await reopened.close()
    finally:
        await server.close()
        await db.close()


def test_key_history_refuses_nonsense() -> None:
    a, b = Signer.generate(ORIGIN).verifier, Signer.generate(ORIGIN).verifier
    with pytest.raises(NoteError, match="size 0"):
        KeyHistory.parse(f"3 {a.vkey}\n")
    with pytest.raises(NoteError, match="increase"):
        KeyHistory.parse(f"0 {a.vkey}\n0 {b.vkey}\n")
    with pytest.raises(NoteError, match="log's name"):
        KeyHistory.parse(f"0 {a.vkey}\n5 {Signer.generate('other.example/x').verifier.vkey}\n")
    history = KeyHistory.parse(f"0 {a.vkey}\n5 {b.vkey}\n")
    assert history.required(4) == [a] and history.required(5) == [b, a] and history.required(6) == [b]
    assert KeyHistory.parse(history.format()) == history
