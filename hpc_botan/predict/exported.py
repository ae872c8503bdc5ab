"""The trained networks of an ``hpc-botan export`` file: torch programs and their metadata only.

Nothing here imports the training code, so a process that predicts from an exported model needs
torch, but not the package's training stack, the run directory or its checkpoints.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from hpc_botan.errors import UserError
from hpc_botan.io.exported_model import ExportedModelFile, read_exported_model
from hpc_botan.physics.configuration_targets import GRAPH_CUTOFF
from hpc_botan.predict.predict import MODEL_FAMILIES, TrainedModels, TrainedTask, check_families


class ExportedNetworks:
    """Runs the program of each (family, temperature) once per graph and hands each task its rows."""

    def __init__(self, file: ExportedModelFile):
        self.file = file
        # (task name, temperature) → (program, first row, stop): a network of every temperature
        # appears once per temperature, under the same name
        self.rows: dict[tuple[str, float], tuple[str, int, int]] = {}
        for entry in file.metadata["programs"]:
            for task in entry["tasks"]:
                self.rows[task["name"], float(entry["temperature"])] = (entry["file"], *task["rows"])
        self._loaded: dict[str, torch.nn.Module] = {}

    def predict(self, tasks: Sequence[TrainedTask], data) -> list[tuple[np.ndarray, np.ndarray]]:
        outputs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        result = []
        for task in tasks:
            program, first, stop = self.rows[task.name, task.temperature]
            if program not in outputs:
                if program not in self._loaded:
                    self._loaded[program] = self.file.program(program)
                with torch.no_grad():
                    node, edge = self._loaded[program](data.x, data.edge_index, data.edge_attr)
                outputs[program] = (node.numpy(), edge.numpy())
            node, edge = outputs[program]
            result.append((node[first:stop], edge[first:stop]))
        return result


def load_exported_models(path: str | Path, models: Sequence[str] = MODEL_FAMILIES, *, explicit: bool = False
                         ) -> TrainedModels:
    """The tasks of ``models`` in the exported file ``path`` (see :mod:`hpc_botan.io.exported_model`)."""
    file = read_exported_model(path)
    meta = file.metadata
    if not np.isclose(float(meta["graph_cutoff"]), GRAPH_CUTOFF):
        raise UserError(f"{path}: exported with graph cutoff {meta['graph_cutoff']} σ; this version of hpc_botan "
                        f"builds graphs with {GRAPH_CUTOFF} σ")
    tasks = []
    for entry in meta["programs"]:
        if entry["family"] not in models:
            continue
        for t in entry["tasks"]:
            tasks.append(TrainedTask(t["name"], entry["family"], float(entry["temperature"]), int(t["time_index"]),
                                     float(t["time"]), tuple(t["replica_files"]), int(t["output"]),
                                     tuple(float(u) for u in t["trained_temperatures"])))
    tasks.sort(key=lambda t: (t.model, t.temperature, t.time_index))
    check_families(Path(path), tasks, models, explicit,
                   lambda family: f"export it from a run that trained {family or ' or '.join(models)}")
    return TrainedModels(Path(path), float(meta["density"]), tasks, ExportedNetworks(file))
