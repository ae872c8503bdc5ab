"""The run report (``hpc-botan report``)."""
