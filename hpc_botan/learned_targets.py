"""The targets a network can learn, declared once.

A network has a node output and an edge output.  ``train.node_target`` names the registered node
target its node output learns (S_i by default) and ``train.edge_target`` the edge target its edge
output learns (E_ij).  The loss weight p (``train.node_weight``) weighs the node target and 1 − p
the edge target, whatever they are: L = p·MSE(node) + (1 − p)·MSE(edge).  Everything that reads or
scores a learned target goes through an entry here: the dataset (which shard array becomes
``y_node`` / ``y_edge``), the loss (which evaluation mask restricts it with ``train.loss_nodes`` /
``loss_edges``), the metrics.csv columns (``val_rho_<label>``), evaluation and the baselines (the
key of the scores in eval/metrics.json), figures, the report, prediction and export (the label of
each output).

Adding a learnable target is one entry: its shard array (``hpc_botan.io.shards``) and, if the
targets stage records one, its split-half reliability (the noise ceiling of ρ is its root).

    ========  ======  =====================  ==========================  ==========
    label     level   shard array            reliability                 mask
    ========  ======  =====================  ==========================  ==========
    S         node    propensity             propensity_reliability      node_mask
    E         edge    pair_change            pair_change_reliability     edge_mask
    R         node    cage_relative          (none recorded)             node_mask
    ========  ======  =====================  ==========================  ==========
"""
from __future__ import annotations

from dataclasses import dataclass

from hpc_botan.errors import ConfigError

LEVELS = ("node", "edge")


@dataclass(frozen=True)
class LearnedTarget:
    """One learnable target of a graph: per particle (node) or per neighbour pair (edge)."""

    #: The key of its scores (eval/metrics.json, rho.csv) and metrics.csv's ``val_rho_<label>``.
    label: str
    #: How the docs and figures write it, e.g. ``S_i``.
    symbol: str
    #: node or edge.
    level: str
    #: The shard array (F, N) or (F, E) it is read from, per time point.
    array: str
    #: The shard array (F,) of its split-half reliability; "" where none is recorded (ceiling unknown).
    reliability: str
    #: The boolean graph attribute that selects the evaluated items (type-A particles, close A–A pairs),
    #: also what ``train.loss_nodes: A`` / ``loss_edges: AA`` restrict the loss to.
    mask: str
    #: What it is, with its unit.
    description: str

    def __post_init__(self):
        if self.level not in LEVELS:
            raise ValueError(f"{self.label}: level must be one of {LEVELS}, not {self.level!r}")


#: Every learnable target, by label.
LEARNED_TARGETS: dict[str, LearnedTarget] = {t.label: t for t in (
    LearnedTarget("S", "S_i", "node", "propensity", "propensity_reliability", "node_mask",
                  "propensity: isoconfigurational mean of |r_i(t) − r_i(0)| (σ)"),
    LearnedTarget("E", "E_ij", "edge", "pair_change", "pair_change_reliability", "edge_mask",
                  "pair-distance change: isoconfigurational mean of |r_ij(t)| − |r_ij(0)| (σ)"),
    LearnedTarget("R", "R_i", "node", "cage_relative", "", "node_mask",
                  "cage-relative displacement: run mean of |Δr_i − mean Δr_j over its first shell at t = 0| (σ)"),
)}

#: The default pair: BOTAN's propensity and pair-distance change.
DEFAULT_NODE_TARGET, DEFAULT_EDGE_TARGET = "S", "E"


def learned_target(label: str, level: str | None = None, key: str = "target") -> LearnedTarget:
    """The registered target ``label`` (of ``level`` if given); a one-line :class:`ConfigError` naming
    ``key`` and the registered choices otherwise."""
    choices = [t.label for t in LEARNED_TARGETS.values() if level is None or t.level == level]
    target = LEARNED_TARGETS.get(label)
    if target is None or label not in choices:
        raise ConfigError(f"{key}: {label!r} is not a registered {level or ''} target "
                          f"(hpc_botan.learned_targets: {', '.join(choices)})".replace("  ", " "))
    return target
