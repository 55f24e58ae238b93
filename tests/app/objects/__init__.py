"""Tests of the app's objects domain (``app/objects/``)."""
