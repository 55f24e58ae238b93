"""Fixtures for the tests of the app's log domain (``app/log/``).

The shared ones are in ``tests/conftest.py``."""
