"""Pure numpy physics: no I/O, no torch, no h5py."""
