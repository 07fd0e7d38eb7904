"""Results and their renderings: the report, text, JSON, HTML and charts."""
