"""Fixtures for the tests of the app's objects domain (``app/objects/``).

The shared ones are in ``tests/conftest.py``."""
