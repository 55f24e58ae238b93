"""Tests of the app's portal domain (``app/portal/``)."""
