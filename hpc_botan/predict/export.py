"""``hpc-botan export``: the trained networks of a run directory as one PT2 archive that needs only torch.

For each model family and temperature, every finished replica of every trained time point (the
networks ``hpc-botan predict`` would use) enters one :class:`~hpc_botan.model.ensemble.Ensemble`
once, with all its output columns, traced by ``torch.export`` with the numbers of nodes and of
edges dynamic; the programs and the metadata that prediction needs go into one archive of
PyTorch's own format (file layout: :mod:`hpc_botan.io.exported_model`).
"""
from __future__ import annotations

import io
import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import torch
from torch.export import Dim
from torch.export.pt2_archive._package import package_pt2

from hpc_botan.io.durable import atomic_path
from hpc_botan.io.exported_model import EXPORTED_FORMAT, METADATA_NAME, program_name
from hpc_botan.model.ensemble import Ensemble, column_offsets
from hpc_botan.physics.configuration_targets import GRAPH_CUTOFF
from hpc_botan.plan.networks import load_network, trained_time_points
from hpc_botan.predict.checkpoints import load_trained_models
from hpc_botan.predict.predict import MODEL_FAMILIES, TRAINING_B_FRACTION, TrainedTask
from hpc_botan.version import __version__

log = logging.getLogger("hpc_botan.predict")

#: The traced graph's size: any size ≥ 2 works afterwards (torch.export specialises sizes 0 and 1).
EXAMPLE_NODES, EXAMPLE_EDGES = 8, 24


def example_inputs(n_nodes: int = EXAMPLE_NODES, n_edges: int = EXAMPLE_EDGES, n_descriptors: int = 0
                   ) -> tuple[torch.Tensor, ...]:
    """A random graph of the model's input shapes: x (N, 1), edge_index (2, E), edge_attr (E, 3), and
    descriptors (N, F) where ``n_descriptors`` F > 0."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (n_nodes, 1), generator=generator).float()
    edge_index = torch.randint(0, n_nodes, (2, n_edges), generator=generator)
    inputs = (x, edge_index, torch.randn(n_edges, 3, generator=generator))
    if n_descriptors:
        inputs += (torch.rand(n_nodes, n_descriptors, generator=generator),)
    return inputs


def export_ensemble(ensemble: Ensemble) -> torch.export.ExportedProgram:
    """``torch.export`` of ``ensemble`` with dynamic numbers of nodes and edges (and, for networks
    with descriptor heads, a fourth input: the particles' descriptors (N, F))."""
    nodes, edges = Dim("n_nodes", min=2), Dim("n_edges", min=2)
    inputs = example_inputs(n_descriptors=ensemble.n_descriptors)
    shapes = ({0: nodes}, {1: edges}, {0: edges}) + (({0: nodes},) if ensemble.n_descriptors else ())
    with torch.no_grad():
        return torch.export.export(ensemble, inputs, dynamic_shapes=shapes)


def export_run(run_dir: str | Path, out: str | Path, models: Sequence[str] = MODEL_FAMILIES, *,
               explicit: bool = False) -> Path:
    """Write the exported model of ``run_dir`` to ``out`` (atomically); returns ``out``.

    Each replica's model file becomes one network of its family and temperature's program, with
    every column it has; each task (time point) reads one column of each of its replicas.
    """
    run_dir = Path(run_dir)
    trained = load_trained_models(run_dir, models, explicit=explicit)
    cfg = trained.networks.cfg
    groups: dict[tuple[str, float], list[TrainedTask]] = defaultdict(list)
    for task in trained.tasks:
        groups[task.model, task.temperature].append(task)
    loaded: dict[str, torch.nn.Module] = {}   # replica file → its network, read once
    network_index: dict[str, int] = {}        # replica file → its entry in metadata["networks"]
    networks_meta, programs, program_entries = [], {}, []
    for number, ((family, temperature), tasks) in enumerate(sorted(groups.items())):
        name = program_name(family, temperature, first=number == 0)
        files = list(dict.fromkeys(f for task in tasks for f in task.replica_files))  # each replica once
        for file in files:
            if file not in loaded:
                loaded[file] = load_network(cfg, run_dir / file, tasks[0].output, fused=False)
            if file not in network_index:
                network_index[file] = len(networks_meta)
                networks_meta.append({"program": name, "prefix": f"networks.{files.index(file)}.",
                                      "architecture": loaded[file].arch.as_dict(), "source": file})
        members = [loaded[f] for f in files]
        offsets = dict(zip(files, column_offsets(members)))
        rows = [{"task": t.name, "time_index": t.time_index,
                 "columns": [offsets[f] + t.output for f in t.replica_files]} for t in tasks]
        log.info("export: %s = %s at T = %g (%d networks, %d time points)", name, family, temperature,
                 len(members), len(tasks))
        programs[name] = export_ensemble(Ensemble(members, temperature).eval())
        program_entries.append({"name": name, "family": family, "temperature": temperature,
                                "n_columns": sum(m.arch.n_outputs for m in members),
                                "networks": [network_index[f] for f in files], "rows": rows})
    tasks_meta = [{
        "name": task.name, "family": task.model, "temperature": task.temperature,
        "time_index": task.time_index, "time": task.time, "output": task.output,
        "trained_temperatures": list(task.trained_temperatures),
        "networks": [network_index[f] for f in task.replica_files], "replica_files": list(task.replica_files)}
        for task in trained.tasks]
    metadata = {
        "format": EXPORTED_FORMAT, "hpc_botan_version": __version__, "torch_version": torch.__version__,
        "source_run": run_dir.resolve().name,
        "graph_cutoff": GRAPH_CUTOFF, "density": cfg.simulation.density, "b_fraction": TRAINING_B_FRACTION,
        "time_points": {f"{t:g}": [float(v) for v in times] for t, times in trained_time_points(run_dir, cfg).items()},
        "temperatures": trained.temperatures, "networks": networks_meta, "tasks": tasks_meta,
        "programs": program_entries,
    }
    # PyTorch writes the archive; into memory first, so that the file appears whole or not at all
    buffer = io.BytesIO()
    package_pt2(buffer, exported_programs=programs,
                extra_files={METADATA_NAME: json.dumps(metadata, indent=1, sort_keys=True)})
    with atomic_path(out) as tmp:
        Path(tmp).write_bytes(buffer.getvalue())
    return Path(out)
