"""Session fixtures for the ML tests: one tiny model and one synthetic dataset, built once.

A plugin (``pytest_plugins`` in ``tests/conftest.py``): torch and the trainers are imported inside
the fixtures, so only the tests that use them pay for them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ["pairs", "tiny_model"]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trainers.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny", "tiny")


@pytest.fixture(scope="session")
def pairs() -> list:
    from trainers.tiny import synthetic_pairs
    from trainers.training import PreferencePair

    records = synthetic_pairs(32, annotators=3)
    return [PreferencePair(r["prompt"], r["chosen"], r["rejected"]) for r in records]
