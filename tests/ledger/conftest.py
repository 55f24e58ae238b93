"""Fixtures for the tests of the ledger library (``ledger/``).

The shared ones are in ``tests/conftest.py``."""
