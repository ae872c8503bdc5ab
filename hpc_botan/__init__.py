"""hpc_botan: from a Kob–Andersen glass-former to a trained BOTAN model, on laptops and clusters."""
from hpc_botan.version import __version__

__all__ = ["__version__", "load_predictor"]


def load_predictor(path, model: str = "botan"):
    """The trained networks of a run directory, or of an ``hpc-botan export`` file, as a Python object
    (:class:`hpc_botan.predictor.Predictor`).

    ``load_predictor("runs/quick").predict(positions, types, box)`` returns, per trained time point
    (τ), the ensemble mean and spread of S_i and E_ij; see :mod:`hpc_botan.predictor`.
    """
    # imported on first use (torch is heavy): ``import hpc_botan`` stays light
    from hpc_botan.predictor import load_predictor as load

    return load(path, model)
