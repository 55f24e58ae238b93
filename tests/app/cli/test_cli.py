"""The CLI contract, run as users run it: a subprocess, JSON on stdout, errors on stderr."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import rfc8785

from ledger.merkle import leaf_hash
from ledger.note import Verifier, open_note
from ledger.proofs import ConsistencyProof, InclusionProof
from ledger.timestamp_verify import verify_timestamp

ORIGIN = "cli.example/rlhf"


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_AUDIT_")}
    env["RLHF_AUDIT_HOME"] = str(tmp_path / "home")
    if request.param == "postgresql":
        env["RLHF_AUDIT_DATABASE_URL"] = request.getfixturevalue("pg_url")
    return env


def run(env: dict[str, str], *args: str, input: bytes | None = None, ok: bool = True,
        home: str | None = None) -> subprocess.CompletedProcess[bytes]:
    argv = [sys.executable, "-m", "app.cli", *(["--home", home] if home else []), *args]
    proc = subprocess.run(argv, input=input, capture_output=True, env=env, timeout=120)
    if ok:
        assert proc.returncode == 0, proc.stderr.decode()
    else:
        assert proc.returncode != 0
        assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    return proc


def test_cli_end_to_end(cli_env: dict[str, str], tmp_path: Path) -> None:
    run(cli_env, "init", "--origin", ORIGIN)
    run(cli_env, "init")  # idempotent
    key = (Path(cli_env["RLHF_AUDIT_HOME"]) / "log.key")
    assert key.stat().st_mode & 0o777 == 0o600
    keys = json.loads(run(cli_env, "public-keys").stdout)
    assert keys["origin"] == ORIGIN
    verifier = Verifier.from_vkey(keys["log_vkey"])
    assert "BEGIN CERTIFICATE" in keys["tsa_certificates"]

    events = b'{"kind": "a", "n": 1}\n\n{"n": 2.50, "kind": "b"}\n'
    out = run(cli_env, "append", "-", input=events).stdout.decode().splitlines()
    rows = [json.loads(line) for line in out]
    assert [r["leaf_index"] for r in rows] == [0, 1]
    entry1 = run(cli_env, "entry", "1").stdout
    e1 = json.loads(entry1)  # in the product's envelope (who appended it, when), RFC 8785 canonical bytes
    assert entry1 == rfc8785.dumps(e1)
    assert (e1["kind"], e1["n"], e1["actor"], e1["role"]) == ("b", 2.5, "system", "system")
    assert base64.b64decode(rows[1]["leaf_hash"]) == leaf_hash(entry1)

    (tmp_path / "more.jsonl").write_bytes(b"".join(b'{"kind":"c","i":%d}\n' % i for i in range(5)))
    run(cli_env, "append", str(tmp_path / "more.jsonl"))

    note = run(cli_env, "checkpoint").stdout
    body = open_note(note, [verifier]).text
    origin, size, root_b64 = body.decode().splitlines()
    assert (origin, size) == (ORIGIN, "7")
    assert run(cli_env, "checkpoint", "--size", "2").stdout.startswith(f"{ORIGIN}\n2\n".encode())

    proof = InclusionProof.from_json(json.loads(run(cli_env, "proof", "inclusion", "1").stdout))
    proof.verify(leaf_hash(entry1), base64.b64decode(root_b64))
    by_hash = json.loads(run(cli_env, "proof", "inclusion", "--leaf-hash", rows[1]["leaf_hash"]).stdout)
    assert by_hash["leaf_index"] == 1 and by_hash["tree_size"] == 7
    old_root = base64.b64decode(
        run(cli_env, "checkpoint", "--size", "2").stdout.decode().splitlines()[2])
    cons = json.loads(run(cli_env, "proof", "consistency", "2", "7").stdout)
    assert set(cons) == {"first", "second", "consistency"}
    ConsistencyProof.from_json(cons).verify(old_root, base64.b64decode(root_b64))

    # The timestamp checks out with OpenSSL, which none of us wrote, and with our verifier.
    (tmp_path / "cp").write_bytes(note)
    (tmp_path / "ts.tsr").write_bytes(run(cli_env, "timestamp").stdout)
    (tmp_path / "chain.pem").write_text(keys["tsa_certificates"])
    root_pem = keys["tsa_certificates"].split("-----END CERTIFICATE-----\n")[1] + \
        "-----END CERTIFICATE-----\n"
    (tmp_path / "root.pem").write_text(root_pem)
    ossl = subprocess.run(["openssl", "ts", "-verify", "-data", str(tmp_path / "cp"), "-in",
                           str(tmp_path / "ts.tsr"), "-CAfile", str(tmp_path / "root.pem")],
                          capture_output=True, text=True)
    assert "Verification: OK" in ossl.stdout, ossl.stdout + ossl.stderr
    verify_timestamp((tmp_path / "ts.tsr").read_bytes(), note, roots=[root_pem.encode()])

    assert b"nothing to integrate" in run(cli_env, "integrate", "--once").stderr
    report = run(cli_env, "verify").stdout.decode()
    assert "OK: the log is intact" in report


def test_cli_errors_are_clear(cli_env: dict[str, str], tmp_path: Path) -> None:
    err = run(cli_env, "checkpoint", ok=False).stderr.decode()
    assert "rlhf-audit init" in err
    run(cli_env, "init", "--origin", ORIGIN)
    run(cli_env, "append", input=b'{"kind":"ok"}\n')
    bad = b'{"kind":"a"}\n{"kind": "b",}\n{"kind":"c"}\n'
    err = run(cli_env, "append", input=bad, ok=False).stderr.decode()
    assert "line 2" in err and "nothing was appended" in err
    err = run(cli_env, "append", input=b'[1, 2]\n', ok=False).stderr.decode()
    assert "line 1" in err
    assert json.loads(run(cli_env, "status").stdout)["sequenced"] == 1
    assert "no entry 5" in run(cli_env, "entry", "5", ok=False).stderr.decode()
    assert "no checkpoint of size 9" in run(cli_env, "checkpoint", "--size", "9", ok=False).stderr.decode()
    run(cli_env, "proof", "inclusion", "3", ok=False)
    run(cli_env, "proof", "consistency", "1", "5", ok=False)
    run(cli_env, "proof", "inclusion", "--leaf-hash", "not base64!", ok=False)
    run(cli_env, "entry", "-1", ok=False)
    err = run(cli_env, "init", "--origin", "other.example/log", ok=False).stderr.decode()
    assert "cannot change" in err
    run(cli_env, "append", str(tmp_path / "missing.jsonl"), ok=False)


def test_home_option_before_the_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_AUDIT_")}
    home = str(tmp_path / "elsewhere")
    run(env, "init", "--origin", ORIGIN, home=home)
    run(env, "append", input=b'{"kind":"x"}\n', home=home)
    assert (Path(home) / "ledger.db").exists()
    assert json.loads(run(env, "status", home=home).stdout)["tree_size"] == 1


@pytest.mark.parametrize(("error", "code"), [
    ("app.core.errors:Missing", 3), ("ledger.errors:NotFound", 3), ("app.core.errors:Conflict", 1),
    ("app.core.errors:Unavailable", 1), ("ledger.errors:StorageError", 1),
    ("app.core.errors:Misconfigured", 1), ("ledger.errors:ConfigError", 1), ("app.objects:ObjectMissing", 3),
    ("builtins:RuntimeError", 70),
])
def test_app_and_ledger_errors_end_as_one_line(error: str, code: int, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """One place (``app.core.commands.run``) turns the application's and the ledger's errors into
    one line on stderr and an exit status: 3 for what does not exist, 1 for any other refusal."""
    import importlib

    import click

    from app.core.commands import run

    module, name = error.split(":")
    cls = getattr(importlib.import_module(module), name)

    @click.command()
    def fails() -> None:
        raise cls("the thing went wrong")

    monkeypatch.delenv("RLHF_AUDIT_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["rlhf-audit"])
    with pytest.raises(SystemExit) as exited:
        run(fails)
    assert exited.value.code == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err == ("internal error: RuntimeError: the thing went wrong (set RLHF_AUDIT_DEBUG=1 for details)\n"
                   if code == 70 else "error: the thing went wrong\n")
