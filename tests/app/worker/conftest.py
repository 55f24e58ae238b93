"""Fixtures for the tests of the app's worker domain (``app/worker/``).

The shared ones are in ``tests/conftest.py``."""
