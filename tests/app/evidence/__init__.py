"""Tests of the app's evidence domain (``app/evidence/``)."""
