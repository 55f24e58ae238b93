"""Tests of the app's jobs domain (``app/jobs/``)."""
