"""Tests of the app's core domain (``app/core/``)."""
