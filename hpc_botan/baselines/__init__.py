"""Baselines for the networks: linear models of S_i and E_ij on simple structural descriptors.

``descriptors`` (coarse-grained radial shell densities, local density, r_ij(0)), ``ridge`` (closed-form
ridge regression on sufficient statistics), ``stage`` (fit on the train split, score like
``hpc-botan evaluate``), ``command`` (``hpc-botan baselines``).
"""
