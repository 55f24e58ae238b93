"""Running ``rlhf-audit`` as operators do: a subprocess with its own environment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.paths import ROOT


def cli_env(home: Path, database_url: str | None = None) -> dict[str, str]:
    """This process's environment without any RLHF_AUDIT_ setting, plus the home (and database)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_AUDIT_")}
    env["RLHF_AUDIT_HOME"] = str(home)
    if database_url is not None:
        env["RLHF_AUDIT_DATABASE_URL"] = database_url
    return env


def cli(env: dict[str, str], *args: str, input: bytes | None = None,
        ok: bool | None = True) -> subprocess.CompletedProcess[bytes]:
    """Run one command; ``ok``: must exit 0 (True), must fail readably (False), either (None)."""
    proc = subprocess.run([sys.executable, "-m", "app.cli", *args], input=input, capture_output=True,
                          env=env, timeout=180)
    if ok is True:
        assert proc.returncode == 0, (proc.stdout + proc.stderr).decode()
    elif ok is False:
        assert proc.returncode != 0, proc.stdout.decode()
        assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    return proc


def cli_stdout(home: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    """Run ``rlhf-audit --home HOME ARGS`` and return stdout (failing the test on an error)."""
    done = subprocess.run([sys.executable, "-m", "app.cli", "--home", str(home), *args], input=stdin,
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert done.returncode == 0, f"rlhf-audit {' '.join(args)}: {done.stderr}"
    return done.stdout


def wait_until_serving(url: str, proc: subprocess.Popen[bytes], log_file: Path, *, path: str = "/readyz",
                       timeout: float = 60) -> None:
    """Poll ``url + path`` until it answers 200; fail with the server's log if it exits or stalls."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {log_file.read_text()[-3000:]}")
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the server did not start: {log_file.read_text()[-3000:]}")
        time.sleep(0.2)
