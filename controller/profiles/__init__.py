"""Profiles of the data: per-feature profiles and the training baseline."""
