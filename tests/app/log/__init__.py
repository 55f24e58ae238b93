"""Tests of the app's log domain (``app/log/``)."""
