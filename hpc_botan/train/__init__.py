"""The training stage: R replicas x D data-parallel ranks, checkpoints that resume bit-for-bit."""
