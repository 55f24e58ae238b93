"""Fixtures for the tests of the app's server domain (``app/server/``).

The shared ones are in ``tests/conftest.py``."""
