"""Session fixtures for the ML tests: one tiny model and one synthetic dataset, built once.

Imported by the ML test modules (``from tests.conftest_ml import tiny_model, pairs``) rather than
living in ``tests/conftest.py``, so the rest of the suite never imports torch.
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
