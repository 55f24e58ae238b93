"""Fixtures for the tests of the app's jobs domain (``app/jobs/``).

The shared ones are in ``tests/conftest.py``."""
