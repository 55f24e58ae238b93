"""Helpers the test modules share: plain functions and data, and fixture plugins (``tests/conftest.py``).

Test modules import from here, never from one another, so any test file can move folders freely.
"""
