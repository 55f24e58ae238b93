"""Tests of the app's audit domain (``app/audit/``)."""
