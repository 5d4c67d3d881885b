"""Console scripts: one thin module per command; each parses arguments and calls library code."""
