"""Data input and validation: reading tables, the model's predictions, batches."""
