"""Tests of the app's events domain (``app/events/``)."""
