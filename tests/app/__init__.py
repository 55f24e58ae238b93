"""Tests of the application (``app/``)."""
