"""Training data: full graphs with targets, read from a run's targets index."""
