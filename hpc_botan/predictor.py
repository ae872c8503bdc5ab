"""Trained models as a Python object: ``load_predictor(run_dir or exported file).predict(positions, types, box)``.

The same predictions as ``hpc-botan predict`` (the ensemble mean and spread over the finished
replicas of every trained time point), for structures that live in Python rather than in files::

    import hpc_botan
    p = hpc_botan.load_predictor("runs/quick")            # BOTAN, its trained temperature
    out = p.predict(positions, types, box)                 # (N, 3) σ, (N,) 0 = A / 1 = B, (3,) σ
    for t, at in out.items():                              # t in τ, increasing
        print(t, at.S.shape, at.E.shape, at.edge_index.shape)

An ``ase.Atoms`` (or anything with its ``get_positions``, ``get_chemical_symbols`` and ``get_cell``)
is accepted in place of the three arrays, with ``type_map`` saying which symbol is A and which is B
(``{"Ar": 0, "Kr": 1}``, ``{"Ar": "A", "Kr": "B"}`` or the text of ``hpc-botan predict --type-map``,
``"Ar=A,Kr=B"``); with arrays, ``type_map`` names the values of ``types`` (``{1: "A", 2: "B"}`` for
LAMMPS types).  Without it, ``types`` must be 0 (A) and 1 (B): any other species is refused, as
``hpc-botan predict`` refuses it.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hpc_botan.errors import UserError
from hpc_botan.io.structures import Structure, assign_species, normalize_type_map
from hpc_botan.predict.predict import MODEL_FAMILIES, TrainedModels, predict_structure

log = logging.getLogger("hpc_botan.predict")


@dataclass(frozen=True)
class TimePointPrediction:
    """The ensemble prediction at one time point t (τ) for a structure of N particles and E edges.

    ``S``, ``S_std``: (N,) float32 mean and spread (standard deviation, ddof 0) over replicas of the
    propensity S_i, σ.  ``E``, ``E_std``: (E,) the same for E_ij (None for NT-GNN, which does not
    predict edges).  ``edge_index``: (2, E) int64 (source i, destination j) of the pairs closer than
    the graph cutoff, in the order of ``E``.  ``replicas``: how many networks were averaged.
    """

    time: float
    S: np.ndarray
    S_std: np.ndarray
    E: np.ndarray | None
    E_std: np.ndarray | None
    edge_index: np.ndarray
    replicas: int


class Predictor:
    """The finished replicas of one model family, from a run directory or an exported file."""

    def __init__(self, models: TrainedModels, model: str):
        self.models = models
        self.model = model

    @property
    def temperatures(self) -> list[float]:
        """The temperatures there are trained networks for (reduced units)."""
        return sorted({t.temperature for t in self.models.tasks if t.model == self.model})

    def predict(self, positions: Any, types: Any = None, box: Any = None, *, temperature: float | None = None,
                type_map: Mapping[Any, Any] | str | None = None) -> dict[float, TimePointPrediction]:
        """Predictions at every trained time point, keyed by t (τ), in increasing order.

        ``positions`` (N, 3) σ, ``types`` (N,) int (0 = A, 1 = B), ``box`` (3,) orthorhombic edge lengths
        σ; or an ASE ``Atoms`` as ``positions`` with ``type_map`` (symbol → 0 / "A" or 1 / "B", or
        ``"Ar=A,Kr=B"``); with arrays, ``type_map`` maps the values of ``types`` instead.  ``temperature``
        selects the networks (default: the only trained temperature).  Warnings about structures
        unlike the training data are logged, as ``hpc-botan predict`` logs them.
        """
        structure = _structure(positions, types, box, type_map)
        result = predict_structure(self.models, structure, temperature)
        for line in result.warnings:
            log.warning("predict: %s", line)
        out = {}
        for task_prediction in result.predictions:
            if task_prediction.task.model != self.model:
                continue
            s, s_std = task_prediction.s_mean_std
            e_stats = task_prediction.e_mean_std
            out[task_prediction.task.time] = TimePointPrediction(
                time=task_prediction.task.time, S=s, S_std=s_std, E=None if e_stats is None else e_stats[0],
                E_std=None if e_stats is None else e_stats[1], edge_index=result.graph.edge_index,
                replicas=int(task_prediction.s_replicas.shape[0]))
        return dict(sorted(out.items()))


def _structure(positions: Any, types: Any, box: Any, type_map: Mapping[Any, Any] | str | None) -> Structure:
    """A :class:`Structure` from arrays or from an ASE-like ``Atoms``; species 0 = A / 1 = B only."""
    table = None if type_map is None else normalize_type_map(type_map)
    if hasattr(positions, "get_positions") and hasattr(positions, "get_chemical_symbols"):
        atoms = positions
        if table is None:
            raise UserError("predict: an Atoms object needs type_map, e.g. {'A': 0, 'B': 1} (symbol -> 0 = A, 1 = B)")
        symbols = list(atoms.get_chemical_symbols())
        unknown = sorted(set(symbols) - set(table))
        if unknown:
            raise UserError(f"predict: type_map has no entry for the symbol(s) {unknown}")
        pbc = np.asarray(atoms.get_pbc() if hasattr(atoms, "get_pbc") else True, dtype=bool).reshape(-1)
        if not pbc.all():
            raise UserError(f"predict: the Atoms object is not periodic in every direction (pbc={pbc.tolist()}); "
                            "the models know only bulk liquids in a periodic box")
        cell = np.asarray(atoms.get_cell(), dtype=np.float64)
        if cell.shape != (3, 3) or np.abs(cell - np.diag(np.diag(cell))).max() > 1e-9:
            raise UserError("predict: the cell must be orthorhombic (a diagonal 3 x 3 cell)")
        positions, types, box = atoms.get_positions(), [table[s] for s in symbols], np.diag(cell)
        table = None  # the symbols are mapped: types are 0 and 1 now
    if types is None or box is None:
        raise UserError("predict: give positions (N, 3), types (N,) and box (3,), or an Atoms object")
    positions = np.asarray(positions, dtype=np.float64)
    types = np.asarray(types)
    box = np.asarray(box, dtype=np.float64).reshape(-1)
    if positions.ndim != 2 or positions.shape[1] != 3 or types.shape != (positions.shape[0],) or box.shape != (3,):
        raise UserError(f"predict: shapes positions {positions.shape}, types {types.shape}, box {box.shape}; "
                        "expected (N, 3), (N,), (3,)")
    if not np.isfinite(positions).all() or not (box > 0).all():
        raise UserError("predict: positions must be finite and box edges positive")
    if types.dtype.kind == "f" and np.isfinite(types).all() and (types == np.round(types)).all():
        types = types.astype(np.int64)  # 0.0 / 1.0 from a float array are the integers 0 / 1
    # the same rule as the files: 0 (A) and 1 (B), or what type_map says; a network never saw species 2
    species = assign_species(np.array([str(t) for t in types.tolist()]), table, "python", lambda i: "predict",
                             ("type", "types"), option="type_map")
    return Structure(positions=positions, species=species, box=box, source="<python>")


def load_models(path: str | Path, models: Sequence[str] = MODEL_FAMILIES, *, explicit: bool = False
                ) -> TrainedModels:
    """The trained networks of a run directory (its checkpoints) or of an ``hpc-botan export`` file."""
    # Each loader is imported only when needed: a process that predicts from an exported file
    # must not load the training code that reading checkpoints needs.
    if Path(path).is_file():
        from hpc_botan.predict.exported import load_exported_models  # torch only

        return load_exported_models(path, models, explicit=explicit)
    from hpc_botan.predict.checkpoints import load_trained_models  # the training code

    return load_trained_models(path, models, explicit=explicit)


def load_predictor(path: str | Path, model: str = "botan") -> Predictor:
    """The trained ``model`` family (``botan`` or ``ntgnn``) of the run directory or exported file ``path``.

    From a run directory, every task of the family with at least one finished replica is used
    (each replica's validation-selected ``best.pt``), as ``hpc-botan predict`` and ``evaluate`` use
    them; an ``hpc-botan export`` file holds the same networks and needs no training code.
    """
    if model not in MODEL_FAMILIES:
        raise UserError(f"load_predictor: model must be one of {', '.join(MODEL_FAMILIES)}, got {model!r}")
    models = load_models(path, (model,), explicit=True)
    if not any(math.isfinite(t.time) for t in models.tasks):
        raise UserError(f"{path}: no trained time points")
    return Predictor(models, model)
