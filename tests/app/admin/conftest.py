"""Fixtures for the tests of the app's admin domain (``app/admin/``).

The shared ones are in ``tests/conftest.py``."""
