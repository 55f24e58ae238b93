"""Fixtures for the tests of the app's auth domain (``app/auth/``).

The shared ones are in ``tests/conftest.py``."""
