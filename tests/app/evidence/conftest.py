"""Fixtures for the tests of the app's evidence domain (``app/evidence/``).

The shared ones are in ``tests/conftest.py``."""
