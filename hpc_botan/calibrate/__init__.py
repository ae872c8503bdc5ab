"""Calibrated time points: a pilot run measures τα before the production simulation (``hpc-botan calibrate``)."""
