"""Feature attributions (Shapley values) and their shift from the baseline."""
