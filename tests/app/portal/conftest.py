"""Fixtures for the tests of the app's portal domain (``app/portal/``).

The shared ones are in ``tests/conftest.py``."""
