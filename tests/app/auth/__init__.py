"""Tests of the app's auth domain (``app/auth/``)."""
