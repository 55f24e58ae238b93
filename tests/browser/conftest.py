"""A real server process and Debian's Chromium for the portal's browser tests.

The server is ``rlhf-audit serve`` (what users run) over a temporary home, on 127.0.0.1 and a
free port, started once per session; accounts are created with ``rlhf-audit users create``.
Chromium is driven by the pip ``playwright`` package (no ``playwright install``: Debian's
/usr/bin/chromium). Without Chromium or Playwright the tests skip, unless CI=true, where they fail.
Screenshots go to ``$RLHF_AUDIT_ARTEFACTS`` (default ``tests/artefacts/``, git-ignored).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.cli_run import wait_until_serving

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("RLHF_AUDIT_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
PASSWORD = "portal-test-password"
ACCOUNTS = {"admin1": "admin", "ov1": "overseer", "ov2": "overseer", "op1": "operator", "aud1": "auditor"}


def _unavailable(why: str) -> None:
    if IN_CI:
        pytest.fail(f"browser tests must run when CI=true: {why}")
    pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(home: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    """Run ``rlhf-audit --home HOME ARGS`` and return stdout (failing the test on an error)."""
    done = subprocess.run([sys.executable, "-m", "app.cli", "--home", str(home), *args], input=stdin,
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert done.returncode == 0, f"rlhf-audit {' '.join(args)}: {done.stderr}"
    return done.stdout


@dataclass
class Server:
    url: str
    home: Path
    env: dict[str, str]
    secrets: dict[str, str] = field(default_factory=dict)  # account -> TOTP secret, once enrolled
    used_steps: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="session")
def artefacts() -> Path:
    path = Path(os.environ.get("RLHF_AUDIT_ARTEFACTS") or ROOT / "tests" / "artefacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("portal")
    home = base / "home"
    env = {**os.environ, "RLHF_AUDIT_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("RLHF_AUDIT_REDIS_URL", None)  # the local worker, as on a bare machine
    env.pop("RLHF_AUDIT_KEYS_DIR", None)
    cli(home, "init", env=env)
    for name, role in ACCOUNTS.items():
        cli(home, "users", "create", name, "--role", role, "--password-stdin", stdin=PASSWORD + "\n", env=env)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_file = (base / "server.log").open("wb")
    command = [sys.executable, "-m", "app.cli", "--home", str(home), "serve", "--port", str(port)]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(url, proc, base / "server.log", path="/healthz")
        yield Server(url, home, env)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log_file.close()


@pytest.fixture(scope="package")  # sync Playwright runs an event loop: end it before the async tests
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        _unavailable(f"the playwright package is not installed: {e}")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Training:
    """A tiny local model and an imported synthetic dataset in the server's home."""

    model: Path
    dataset: str


@pytest.fixture(scope="session")
def training(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Training:
    """Build the tiny model and import a 64-pair dataset (``rlhf-audit datasets import``)."""
    import json

    from trainers.tiny import build_tiny_model, synthetic_pairs

    base = tmp_path_factory.mktemp("training")
    model = build_tiny_model(base / "model")
    pairs = base / "pairs.jsonl"
    fields = ("prompt", "chosen", "rejected", "annotator")
    records = synthetic_pairs(64, annotators=3)
    pairs.write_text("".join(json.dumps({k: r[k] for k in fields}) + "\n" for r in records))
    sheet = base / "datasheet.json"
    sheet.write_text(json.dumps({"origin": "synthetic, generated by the portal test",
                                 "collection_process": "generated by trainers.tiny.synthetic_pairs",
                                 "purpose": "the portal's browser test"}))
    cli(server.home, "datasets", "import", str(pairs), "--dataset", "portal", "--datasheet", str(sheet),
        env=server.env)
    return Training(model, "ds_portal")
