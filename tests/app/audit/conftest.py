"""Fixtures for the tests of the app's audit domain (``app/audit/``).

The shared ones are in ``tests/conftest.py``."""
