"""Tests of the app's incidents domain (``app/incidents/``)."""
