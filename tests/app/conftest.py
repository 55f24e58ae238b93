"""Fixtures for the tests of the application (``app/``).

The shared ones are in ``tests/conftest.py``."""
