"""Fixtures for the tests of the app's incidents domain (``app/incidents/``).

The shared ones are in ``tests/conftest.py``."""
