"""Where things are, computed from this file (which does not move) rather than from a test's own path."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
TESTS = ROOT / "tests"
VECTORS = TESTS / "vectors"  # the published test vectors (sources in its README)
