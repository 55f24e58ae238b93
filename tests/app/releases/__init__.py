"""Tests of the app's releases domain (``app/releases/``)."""
