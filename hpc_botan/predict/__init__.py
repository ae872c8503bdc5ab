"""Prediction for static structures that were never simulated: readers, graphs, ensembles of replicas."""
