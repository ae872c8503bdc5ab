"""Every target of one configuration, from its t = 0 structure and its ensemble of runs.

Pure numpy (no I/O): the MPI stage and the importers feed it arrays and store what it returns.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpc_botan.physics.neighbors import edge_vectors, neighbor_pairs
from hpc_botan.physics.targets import (
    cage_relative_displacement,
    d2min,
    local_average_displacement,
    mirror_edges,
    pair_distance_change_per_run,
    propensity,
    self_intermediate_scattering,
    split_half_reliability,
)

#: Graph edges: every pair closer than this at t = 0 (σ), both directions.
GRAPH_CUTOFF = 2.0
#: First shell: pairs closer than this at t = 0 (σ); evaluation mask, cage, D²min.
SHELL_CUTOFF = 1.35


@dataclass
class ConfigurationTargets:
    """Graph and targets of one configuration (N particles, E directed edges, F time points)."""

    species: np.ndarray      # (N,) int8, 0 = A, 1 = B
    positions0: np.ndarray   # (N, 3) float64, σ, inside the box
    box: np.ndarray          # (3,) float64, σ
    times: np.ndarray        # (F,) float64, τ
    edge_index: np.ndarray   # (2, E) int64, (source i, destination j), sorted
    edge_attr: np.ndarray    # (E, 3) float32, r_j − r_i (minimum image), σ
    node_mask: np.ndarray    # (N,) bool, type A
    edge_mask: np.ndarray    # (E,) bool, A–A with |r_ij(0)| < 1.35
    propensity: np.ndarray   # (F, N) float32, S_i(t), σ
    # The rest needs the runs' trajectories; None for data sets that ship S_i only (GlassBench).
    pair_change: np.ndarray | None = None  # (F, E) float32, E_ij(t), σ
    cage_relative: np.ndarray | None = None  # (F, N) float32, R_i(t), σ
    d2min: np.ndarray | None = None        # (F, N) float32, ⟨D²min⟩, σ² (NaN with < 3 neighbours)
    local_displacement: np.ndarray | None = None  # (F, N, 3) float32, σ
    fs: np.ndarray | None = None           # (F,) float64, F_s(k = 2π, t) of A particles
    propensity_reliability: np.ndarray | None = None  # (F,) split-half (Spearman–Brown), type A
    pair_change_reliability: np.ndarray | None = None  # (F,) same for E_ij on the edge mask

    @property
    def propensity_ceiling(self) -> np.ndarray:
        """(F,) highest reachable Pearson ρ for S_i: √reliability."""
        return np.sqrt(np.clip(self.propensity_reliability, 0.0, None))

    @property
    def pair_change_ceiling(self) -> np.ndarray:
        return np.sqrt(np.clip(self.pair_change_reliability, 0.0, None))


def structure_graph(positions0: np.ndarray, species: np.ndarray, box: np.ndarray, *,
                    graph_cutoff: float = GRAPH_CUTOFF, shell_cutoff: float = SHELL_CUTOFF) -> dict[str, np.ndarray]:
    """The graph of a static structure: edge_index (2, E), edge_attr (E, 3), masks, shell pairs."""
    positions0 = np.asarray(positions0, dtype=np.float64)
    box = np.asarray(box, dtype=np.float64)
    edge_index = neighbor_pairs(positions0, box, graph_cutoff)
    vectors = edge_vectors(positions0, edge_index, box)
    dist0 = np.linalg.norm(vectors, axis=1)
    node_mask = np.asarray(species) == 0
    in_shell = dist0 < shell_cutoff
    return {"edge_index": edge_index, "vectors": vectors, "dist0": dist0, "node_mask": node_mask,
            "edge_mask": node_mask[edge_index[0]] & node_mask[edge_index[1]] & in_shell,
            "shell_index": edge_index[:, in_shell]}


def targets_without_trajectories(positions0: np.ndarray, species: np.ndarray, box: np.ndarray,
                                 propensity_values: np.ndarray, times: np.ndarray) -> ConfigurationTargets:
    """Graph plus given propensities (F, N) for data sets without trajectories (e.g. GlassBench)."""
    g = structure_graph(positions0, species, box)
    return ConfigurationTargets(
        species=np.asarray(species, dtype=np.int8), positions0=np.asarray(positions0, dtype=np.float64),
        box=np.asarray(box, dtype=np.float64), times=np.asarray(times, dtype=np.float64),
        edge_index=g["edge_index"], edge_attr=g["vectors"].astype(np.float32), node_mask=g["node_mask"],
        edge_mask=g["edge_mask"], propensity=np.asarray(propensity_values, dtype=np.float32))


def compute_targets(positions0: np.ndarray, species: np.ndarray, box: np.ndarray, runs: np.ndarray,
                    times: np.ndarray, *, graph_cutoff: float = GRAPH_CUTOFF,
                    shell_cutoff: float = SHELL_CUTOFF) -> ConfigurationTargets:
    """Compute the graph and every target of one configuration.

    Args:
        positions0: (N, 3) t = 0 positions, σ.
        species: (N,) 0 = A, 1 = B.
        box: (3,) orthorhombic box edges, σ.
        runs: (R, F, N, 3) unwrapped positions of R runs at F time points (t > 0), σ.
        times: (F,) the time points, τ.

    Returns:
        :class:`ConfigurationTargets`; memory stays O(R·N + E) per time point.
    """
    positions0 = np.asarray(positions0, dtype=np.float64)
    box = np.asarray(box, dtype=np.float64)
    species = np.asarray(species, dtype=np.int8)
    n_runs, n_times, n, _ = runs.shape
    g = structure_graph(positions0, species, box, graph_cutoff=graph_cutoff, shell_cutoff=shell_cutoff)
    edge_index, vectors = g["edge_index"], g["vectors"]
    node_mask, edge_mask, shell_index = g["node_mask"], g["edge_mask"], g["shell_index"]

    out = {name: [] for name in ("S", "E", "R", "D", "L")}
    fs, s_rel, e_rel = [], [], []
    mirror = mirror_edges(edge_index, n)  # the same graph at every time point
    for f in range(n_times):
        frame = runs[:, f]  # (R, N, 3)
        disp = frame - positions0
        out["S"].append(propensity(positions0, frame))
        per_run_e = pair_distance_change_per_run(positions0, frame, edge_index, box, mirror=mirror)
        out["E"].append(per_run_e.mean(axis=0))
        out["R"].append(cage_relative_displacement(positions0, frame, shell_index))
        out["D"].append(d2min(positions0, frame, shell_index, box))
        out["L"].append(local_average_displacement(positions0, frame, shell_index))
        fs.append(self_intermediate_scattering(disp[:, None], mask=node_mask)[0])
        s_rel.append(split_half_reliability(np.linalg.norm(disp, axis=-1), mask=node_mask)[0])
        e_rel.append(split_half_reliability(per_run_e, mask=edge_mask)[0])

    def stack(key):
        return np.asarray(out[key], dtype=np.float32)

    return ConfigurationTargets(
        species=species, positions0=positions0, box=box, times=np.asarray(times, dtype=np.float64),
        edge_index=edge_index, edge_attr=vectors.astype(np.float32), node_mask=node_mask, edge_mask=edge_mask,
        propensity=stack("S"), pair_change=stack("E"), cage_relative=stack("R"), d2min=stack("D"),
        local_displacement=stack("L"), fs=np.asarray(fs), propensity_reliability=np.asarray(s_rel),
        pair_change_reliability=np.asarray(e_rel),
    )
