"""Tests of the app's admin domain (``app/admin/``)."""
