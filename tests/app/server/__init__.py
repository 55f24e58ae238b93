"""Tests of the app's server domain (``app/server/``)."""
