"""Tests of the app's worker domain (``app/worker/``)."""
