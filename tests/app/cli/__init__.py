"""Tests of the app's cli domain (``app/cli/``)."""
