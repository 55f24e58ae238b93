"""Fixtures for the tests of the app's datasets domain (``app/datasets/``).

The shared ones are in ``tests/conftest.py``."""
