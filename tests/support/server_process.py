"""The real server, ``rlhf-audit serve`` (uvicorn), in a subprocess, and the CLI beside it.

For the tests that are about the process itself: what uvicorn makes of forwarded headers, and
what survives a ``kill -9``. The environment is the test's without any ``RLHF_AUDIT_*`` variable,
plus what the test gives.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.cli_run import wait_until_serving
from tests.support.paths import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_AUDIT_")}
    return {**env, **extra}


def cli(home: Path, env: dict[str, str], *args: str, stdin: str = "") -> str:
    """Run ``rlhf-audit --home HOME ARGS``; its stdout (a failure shows its stdout and stderr)."""
    done = subprocess.run([sys.executable, "-m", "app.cli", "--home", str(home), *args], input=stdin,
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


class Server:
    """One ``rlhf-audit serve --no-worker`` process at a time on one port; stderr to a file
    (a pipe nobody reads would fill and stall the server)."""

    def __init__(self, home: Path, env: dict[str, str], *args: str) -> None:
        self.home, self.env, self.args = home, env, args
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []

    def start(self, timeout: float = 90) -> None:
        log = self.home.parent / f"server-{self.port}-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "--home", str(self.home), "serve", "--port",
                 str(self.port), "--no-worker", *self.args],
                env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        wait_until_serving(self.base, self.proc, log, path="/healthz", timeout=timeout)

    def kill(self) -> None:
        """``kill -9``: no shutdown, no flush, no goodbye."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stderr(self) -> str:
        return "".join(log.read_text(errors="replace") for log in self.logs)
