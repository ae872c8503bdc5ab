"""Evaluation: Pearson correlations, noise ceilings, baselines."""
