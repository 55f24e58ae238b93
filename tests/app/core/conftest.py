"""Fixtures for the tests of the app's core domain (``app/core/``).

The shared ones are in ``tests/conftest.py``."""
