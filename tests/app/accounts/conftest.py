"""Fixtures for the tests of the app's accounts domain (``app/accounts/``).

The shared ones are in ``tests/conftest.py``."""
