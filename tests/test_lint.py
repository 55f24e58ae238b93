"""House style, enforced: ruff over the project, mypy --strict over the ledger."""

from __future__ import annotations

import subprocess
import sys

from tests.support.paths import ROOT


def test_ruff() -> None:
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "ledger", "app", "trainers",
                           "tests", "benchmarks", "migrations"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_ledger() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy", "ledger"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
