"""Tests of the app's datasets domain (``app/datasets/``)."""
