"""Fixtures for the tests of the app's cli domain (``app/cli/``).

The shared ones are in ``tests/conftest.py``."""
