"""Tests of the app's compliance domain (``app/compliance/``)."""
