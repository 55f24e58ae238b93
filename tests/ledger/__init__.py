"""Tests of the ledger library (``ledger/``)."""
