"""Fixtures for the tests of the app's events domain (``app/events/``).

The shared ones are in ``tests/conftest.py``."""
