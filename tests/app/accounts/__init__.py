"""Tests of the app's accounts domain (``app/accounts/``)."""
