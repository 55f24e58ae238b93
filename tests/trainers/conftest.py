"""Fixtures for the tests of the training integrations (``trainers/``).

The shared ones are in ``tests/conftest.py``."""
