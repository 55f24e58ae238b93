"""Fixtures for the tests of the app's oversight domain (``app/oversight/``).

The shared ones are in ``tests/conftest.py``."""
