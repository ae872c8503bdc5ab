"""The trained networks of an ``hpc-botan export`` file: its metadata and raw weights only.

Nothing here imports the training code, and nothing in the file is executed: each network is
rebuilt from :mod:`hpc_botan.model` with the architecture the metadata names and the weights the
archive stores as plain arrays (:mod:`hpc_botan.io.exported_model` says why the ``torch.export``
programs in the same file are not what is loaded).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from hpc_botan.errors import UserError
from hpc_botan.io.exported_model import ExportedModelFile, read_exported_model
from hpc_botan.model.botan import Botan, BotanArchitecture, with_temperature
from hpc_botan.model.bounded_memory import run_network
from hpc_botan.physics.configuration_targets import GRAPH_CUTOFF
from hpc_botan.predict.predict import MODEL_FAMILIES, TrainedModels, TrainedTask, check_families


def task_key(task: TrainedTask) -> tuple[str, float, int]:
    """A task's identity in a file: every time point of a multi-time task has the same name."""
    return task.name, task.temperature, task.time_index


class ExportedNetworks:
    """Runs each network of the file once per graph and hands each task its replicas' column."""

    def __init__(self, file: ExportedModelFile, tasks: Sequence[TrainedTask], network_indices: Sequence[list[int]]):
        self.file = file
        self.networks_of = {task_key(t): list(ix) for t, ix in zip(tasks, network_indices)}
        self._loaded: dict[int, Botan] = {}

    def network(self, index: int) -> Botan:
        """Network ``index``, built and loaded on first use (CPU, eval mode)."""
        if index not in self._loaded:
            arch = BotanArchitecture(**self.file.metadata["networks"][index]["architecture"])
            model = Botan(arch)  # the hand-written edge update, as checkpoints predict
            state = {k: torch.from_numpy(v) for k, v in self.file.network_weights(index).items()}
            try:
                model.load_state_dict(state, strict=True)
            except RuntimeError as exc:  # missing, unexpected or misshapen entries
                first = str(exc).strip().splitlines()
                detail = " ".join(line.strip() for line in first[1:3]) if len(first) > 1 else first[0]
                raise UserError(f"{self.file.path}: the weights of networks[{index}] "
                                f"do not fit its architecture {arch.as_dict()} ({detail})") from None
            self._loaded[index] = model.eval()
        return self._loaded[index]

    def predict(self, tasks: Sequence[TrainedTask], data) -> list[tuple[np.ndarray, np.ndarray]]:
        outputs: dict[tuple[int, float], tuple[torch.Tensor, torch.Tensor]] = {}  # one forward per network and T
        result = []
        for task in tasks:
            nodes, edges = [], []
            for index in self.networks_of[task_key(task)]:
                if (index, task.temperature) not in outputs:
                    model = self.network(index)
                    x = with_temperature(data.x, task.temperature) if model.arch.temperature_input else data.x
                    extra = (data.descriptors,) if model.arch.n_descriptors else ()
                    outputs[index, task.temperature] = run_network(
                        model, (x, data.edge_index, data.edge_attr, *extra), data.chunk_edges, data.halo)
                node, edge = outputs[index, task.temperature]
                nodes.append(node[:, task.output].numpy())
                edges.append(edge[:, task.output].numpy())
            result.append((np.stack(nodes), np.stack(edges)))
        return result


def load_exported_models(path: str | Path, models: Sequence[str] = MODEL_FAMILIES, *, explicit: bool = False
                         ) -> TrainedModels:
    """The tasks of ``models`` in the exported file ``path`` (see :mod:`hpc_botan.io.exported_model`)."""
    file = read_exported_model(path)
    meta = file.metadata
    if not np.isclose(float(meta["graph_cutoff"]), GRAPH_CUTOFF):
        raise UserError(f"{path}: exported with graph cutoff {meta['graph_cutoff']} σ; this version of hpc_botan "
                        f"builds graphs with {GRAPH_CUTOFF} σ")
    tasks, indices = [], []
    for t in meta["tasks"]:
        if t["family"] not in models:
            continue
        tasks.append(TrainedTask(t["name"], t["family"], float(t["temperature"]), int(t["time_index"]),
                                 float(t["time"]), tuple(t["replica_files"]), int(t["output"]),
                                 tuple(float(u) for u in t["trained_temperatures"])))
        indices.append(list(t["networks"]))
    keys = [task_key(t) for t in tasks]
    if len(set(keys)) != len(keys):
        raise UserError(f"{path}: metadata.json lists a task twice (name, temperature and time index)")
    order = sorted(range(len(tasks)), key=lambda k: (tasks[k].model, tasks[k].temperature, tasks[k].time_index))
    tasks, indices = [tasks[k] for k in order], [indices[k] for k in order]
    check_families(Path(path), tasks, models, explicit,
                   lambda family: f"export it from a run that trained {family or ' or '.join(models)}")
    widths = [int(network["architecture"].get("width", 64)) for network in meta["networks"]]
    return TrainedModels(Path(path), float(meta["density"]), tasks, ExportedNetworks(file, tasks, indices),
                         file.descriptor_settings(), width=max(widths, default=64))
