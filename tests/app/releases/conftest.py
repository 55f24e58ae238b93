"""Fixtures for the tests of the app's releases domain (``app/releases/``).

The shared ones are in ``tests/conftest.py``."""
