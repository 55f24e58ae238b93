"""Tests of the training integrations (``trainers/``)."""
