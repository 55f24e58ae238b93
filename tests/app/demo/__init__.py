"""Tests of the app's demo domain (``app/demo/``)."""
