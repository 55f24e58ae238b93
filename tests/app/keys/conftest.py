"""Fixtures for the tests of the app's keys domain (``app/keys/``).

The shared ones are in ``tests/conftest.py``."""
