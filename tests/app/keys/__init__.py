"""Tests of the app's keys domain (``app/keys/``)."""
