"""Tests of the app's oversight domain (``app/oversight/``)."""
