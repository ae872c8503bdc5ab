"""hpc_botan: from a Kob–Andersen glass-former to a trained BOTAN model, on laptops and clusters."""
__version__ = "0.1.0"


def load_predictor(path, model: str = "botan"):
    """The trained networks of a run directory as a Python object (:class:`hpc_botan.predictor.Predictor`).

    ``load_predictor("runs/quick").predict(positions, types, box)`` returns, per trained time point
    (τ), the ensemble mean and spread of S_i and E_ij; see :mod:`hpc_botan.predictor`.
    Imported on first use, so that ``import hpc_botan`` stays light (no torch).
    """
    from hpc_botan.predictor import load_predictor as load

    return load(path, model)
