"""Statistics and verdicts: drift measures, data quality, performance metrics, paired tests."""
