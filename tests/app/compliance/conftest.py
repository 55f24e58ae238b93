"""Fixtures for the tests of the app's compliance domain (``app/compliance/``).

The shared ones are in ``tests/conftest.py``."""
