"""Fixtures for the tests of the app's demo domain (``app/demo/``).

The shared ones are in ``tests/conftest.py``."""
