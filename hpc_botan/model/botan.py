"""BOTAN: the encoder–process–decoder interaction network of REFERENCE §3.

Inputs are one static structure as a graph: node feature x (N, 1) = particle type as a float
(A = 0, B = 1) — or x (N, 2) = (type, T) for a network of every temperature (``temperature_input``,
see :func:`with_temperature`) —, directed edges ``edge_index`` (2, E) = (source i, destination j) for every pair
with |r_ij(0)| below the graph cutoff, edge feature ``edge_attr`` (E, 3) = r_j − r_i (σ,
minimum image).  Outputs are one value per node (propensity S_i) and one per edge (E_ij), for
each of ``n_outputs`` time points (the reference trains one time point per model: 1).

    h_v⁰ = MLP_v(x),  h_e⁰ = MLP_e(edge_attr)
    repeat n_steps times:
        h_e ← MLP_edge([h_src, h_dst, h_e, h_e⁰])
        h_v ← MLP_node([h_v, h_v⁰, Σ_{e into v} h_e])
    node_pred = Dec(h_v),  edge_pred = Dec(h_e)

Every MLP is Linear → ReLU → Linear → ReLU; the decoder adds a final Linear(W → n_outputs).
Each output column k is then mapped to σ by a fixed affine map, ``pred = offset_k + scale_k · dec_k``
(buffers, not parameters; identity by default): training sets them to the mean and spread of
that time point's targets, so the network learns standardised targets while every prediction it
returns, and every loaded checkpoint, stays in σ.
With the defaults (width 64, 7 steps, shared step weights, one decoder) this is the reference
network, 54,209 parameters, and :func:`hpc_botan.model.reference_weights.load_reference_weights`
loads its published state_dicts.  The first layers of the two update MLPs are evaluated blockwise
(node blocks per node, h_e⁰ block once per forward), which is the same function with far less
work per edge; see :mod:`hpc_botan.model.edge_update`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from hpc_botan.model.bounded_memory import HaloExchange, forward_in_edge_chunks
from hpc_botan.model.descriptor_heads import DescriptorHeads
from hpc_botan.model.edge_update import fused_edge_mlp, plain_edge_mlp
from hpc_botan.model.force_features import N_NODE_FORCE_FEATURES, N_PAIR_FORCE_FEATURES, ForceFeatures
from hpc_botan.physics.descriptors import DescriptorSettings

#: The output standardisation buffers (offset, scale per output column), in this order.
OUTPUT_BUFFERS = ("node_offset", "node_scale", "edge_offset", "edge_scale")


@dataclass(frozen=True)
class BotanArchitecture:
    """What determines the network's parameters (stored in every checkpoint)."""

    width: int = 64
    n_steps: int = 7
    shared_weights: bool = True  # the same edge/node update at every step (reference)
    separate_decoders: bool = False  # one decoder for nodes and edges (reference)
    n_outputs: int = 1  # time points predicted at once
    temperature_input: bool = False  # node feature (type, T) instead of (type,): one network for all T
    #: The ridge baseline's descriptors as linear output heads (model.descriptors: heads,
    #: :mod:`hpc_botan.model.descriptor_heads`): their shell centres and coarse-graining lengths (σ);
    #: empty = no heads (the reference network)
    descriptor_shells: tuple[float, ...] = ()
    descriptor_shell_width: float = 0.1
    descriptor_lengths: tuple[float, ...] = ()
    #: With descriptor heads: the potential (simulation.potential) whose force invariants the heads also
    #: read (model.force_features, :mod:`hpc_botan.model.force_features`); empty = none
    force_features: str = ""

    def __post_init__(self):
        # read back from JSON or YAML these are lists: the architecture compares equal all the same
        for name in ("descriptor_shells", "descriptor_lengths"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        object.__setattr__(self, "descriptor_shell_width", float(self.descriptor_shell_width))

    @property
    def descriptor_settings(self) -> DescriptorSettings | None:
        """The descriptors the heads read (None without heads)."""
        if not self.descriptor_shells:
            return None
        return DescriptorSettings(self.descriptor_shells, self.descriptor_shell_width, self.descriptor_lengths)

    @property
    def n_descriptors(self) -> int:
        """F, the node descriptors per particle that ``forward`` takes (0 without heads)."""
        settings = self.descriptor_settings
        return 0 if settings is None else settings.n_features

    def as_dict(self) -> dict:
        d = asdict(self)
        # added later: without force features the dict is what checkpoints and exports held before it
        if not d["force_features"]:
            del d["force_features"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> BotanArchitecture:
        """The architecture a checkpoint or export stores (:meth:`as_dict`); ValueError where ``d`` is not one."""
        try:
            return cls(**d)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not a BOTAN architecture ({exc})") from None


class MLP(nn.Module):
    """Linear → ReLU → Linear → ReLU (the final ReLU is applied), then an optional Linear head."""

    def __init__(self, n_in: int, width: int, n_head: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(n_in, width)
        self.fc2 = nn.Linear(width, width)
        if n_head is not None:
            self.fc3 = nn.Linear(width, n_head)

    def hidden(self, x: Tensor) -> Tensor:
        """The two ReLU layers (M, W): what the head ``fc3`` reads."""
        return torch.relu(self.fc2(torch.relu(self.fc1(x))))

    def forward(self, x: Tensor) -> Tensor:
        x = self.hidden(x)
        return self.fc3(x) if hasattr(self, "fc3") else x


class Botan(nn.Module):
    """The BOTAN network; ``forward(x, edge_index, edge_attr) -> (node_pred (N, K), edge_pred (E, K))``.

    ``fused=True`` (default) uses the hand-written edge-update autograd function; ``False`` the same
    arithmetic in ordinary autograd ops (what ``torch.compile`` should see).
    """

    def __init__(self, arch: BotanArchitecture = BotanArchitecture(), fused: bool = True):
        super().__init__()
        self.arch = arch
        self.fused = fused
        #: Recompute each message-passing step in the backward (train.checkpoint_activations): training
        #: holds one (E, W) edge state per step instead of every step's activations.  Not part of the
        #: architecture: the same weights, the same outputs and gradients.
        self.checkpoint_activations = False
        w = arch.width
        self.node_encoder = MLP(2 if arch.temperature_input else 1, w)
        self.edge_encoder = MLP(3, w)
        n_weights = 1 if arch.shared_weights else arch.n_steps
        self.edge_updates = nn.ModuleList(MLP(4 * w, w) for _ in range(n_weights))
        self.node_updates = nn.ModuleList(MLP(3 * w, w) for _ in range(n_weights))
        # decoders[0] reads nodes, decoders[-1] edges: one shared decoder unless separate_decoders
        self.decoders = nn.ModuleList(MLP(w, w, arch.n_outputs) for _ in range(2 if arch.separate_decoders else 1))
        k = arch.n_outputs
        for name, value in zip(OUTPUT_BUFFERS, (0.0, 1.0, 0.0, 1.0)):
            self.register_buffer(name, torch.full((k,), value))
        if arch.n_descriptors:
            forces = bool(arch.force_features)
            self.descriptor_heads = DescriptorHeads(arch.n_descriptors + N_NODE_FORCE_FEATURES * forces, k,
                                                    N_PAIR_FORCE_FEATURES * forces)
            if forces:
                self.force_features = ForceFeatures(arch.force_features)

    def set_output_standardisation(self, node_mean: Tensor, node_std: Tensor, edge_mean: Tensor, edge_std: Tensor
                                   ) -> None:
        """Map output column k to σ as ``mean_k + std_k · raw_k`` (each argument (n_outputs,), σ)."""
        for name, value in zip(OUTPUT_BUFFERS, (node_mean, node_std, edge_mean, edge_std)):
            getattr(self, name).copy_(torch.as_tensor(value, dtype=torch.float32).reshape(-1))

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, descriptors: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        """x (N, 1) float; edge_index (2, E) int64 (source, destination); edge_attr (E, 3) σ;
        descriptors (N, F) float, the particles' radial descriptors (only with descriptor heads)."""
        if (descriptors is not None) != bool(self.arch.n_descriptors):
            raise ValueError(f"this network takes {self.arch.n_descriptors or 'no'} descriptors per particle, "
                             f"got {'none' if descriptors is None else tuple(descriptors.shape)}")
        src, dst = edge_index[0], edge_index[1]
        h_v0 = self.node_encoder(x)
        h_v = h_v0
        if self.checkpoint_activations and torch.is_grad_enabled():
            h_e = None   # step 0 recomputes h_e⁰ itself: nothing of size E is held between steps but their h_e
            for step in range(self.arch.n_steps):
                h_v, h_e = checkpoint(self._recomputed_step, step, h_v, h_e, h_v0, edge_attr, src, dst,
                                      use_reentrant=False)
        else:
            h_e0 = self.edge_encoder(edge_attr)
            h_e, constant = h_e0, None
            for step in range(self.arch.n_steps):
                if constant is None or not self.arch.shared_weights:
                    constant = self.constant_term(step, h_e0)
                h_v, h_e = self._step(step, h_v, h_e, h_v0, constant, src, dst)
        node = self.decoders[0](h_v)   # first: hooks on a shared decoder (head_init) see nodes, then edges
        if self.checkpoint_activations and torch.is_grad_enabled():
            # the edge decoder's two hidden (E, W) activations recomputed too: only h_e is held for it
            edge = checkpoint(self.decoders[-1], h_e, use_reentrant=False)
        else:
            edge = self.decoders[-1](h_e)
        if descriptors is not None:
            head_node, head_edge = self.descriptor_heads(*self.head_inputs(x, edge_index, edge_attr, descriptors))
            node, edge = node + head_node, edge + head_edge
        return torch.addcmul(self.node_offset, node, self.node_scale), torch.addcmul(self.edge_offset, edge,
                                                                                     self.edge_scale)

    def constant_term(self, step: int, h_e0: Tensor) -> Tensor:
        """h_e⁰ W_e0^T + b1 (E, W): the part of step ``step``'s first edge layer that no step changes."""
        e_mlp = self.edge_updates[0 if self.arch.shared_weights else step]
        return torch.addmm(e_mlp.fc1.bias, h_e0, e_mlp.fc1.weight[:, 3 * self.arch.width:].t())

    def _step(self, step: int, h_v: Tensor, h_e: Tensor, h_v0: Tensor, constant: Tensor, src: Tensor, dst: Tensor
              ) -> tuple[Tensor, Tensor]:
        """One message-passing step: (h_v (N, W), h_e (E, W)) → the updated pair (module docstring)."""
        w = self.arch.width
        e_mlp = self.edge_updates[0 if self.arch.shared_weights else step]
        edge_mlp = fused_edge_mlp if self.fused else plain_edge_mlp
        w_e = e_mlp.fc1.weight  # (W, 4W): blocks act on h_src, h_dst, h_e, h_e⁰
        a = h_v @ w_e[:, :w].t()
        b = h_v @ w_e[:, w:2 * w].t()
        h_e = edge_mlp(a, b, h_e, constant, w_e[:, 2 * w:3 * w], e_mlp.fc2.weight, e_mlp.fc2.bias, src, dst)
        incoming = h_e.new_zeros(h_v.shape[0], w).index_add_(0, dst, h_e)
        return self.node_update(step, h_v, h_v0, incoming), h_e

    def node_update(self, step: int, h_v: Tensor, h_v0: Tensor, incoming: Tensor) -> Tensor:
        """MLP_node([h_v, h_v⁰, Σ incoming h_e]) (N, W) of step ``step``, its first layer blockwise."""
        w = self.arch.width
        v_mlp = self.node_updates[0 if self.arch.shared_weights else step]
        w_v = v_mlp.fc1.weight  # (W, 3W): blocks act on h_v, h_v⁰, Σ incoming h_e
        hidden = torch.addmm(v_mlp.fc1.bias, h_v, w_v[:, :w].t())
        hidden = hidden + h_v0 @ w_v[:, w:2 * w].t() + incoming @ w_v[:, 2 * w:].t()
        return torch.relu(v_mlp.fc2(torch.relu(hidden)))

    def _recomputed_step(self, step: int, h_v: Tensor, h_e: Tensor | None, h_v0: Tensor, edge_attr: Tensor,
                         src: Tensor, dst: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`_step` with h_e⁰ and the constant term computed inside (``h_e`` None: h_e⁰, step 0): what
        activation checkpointing recomputes in the backward, so that neither is held for it."""
        h_e0 = self.edge_encoder(edge_attr)
        return self._step(step, h_v, h_e0 if h_e is None else h_e, h_v0, self.constant_term(step, h_e0), src, dst)

    def forward_in_edge_chunks(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor,
                               descriptors: Tensor | None = None, chunk_edges: int = 1 << 20,
                               halo: HaloExchange | None = None) -> tuple[Tensor, Tensor]:
        """:meth:`forward` for inference with bounded memory, ``chunk_edges`` edges at a time, on a whole
        graph or (``halo``) on one spatial domain: :func:`hpc_botan.model.bounded_memory.forward_in_edge_chunks`."""
        return forward_in_edge_chunks(self, x, edge_index, edge_attr, descriptors, chunk_edges, halo)

    def head_inputs(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, descriptors: Tensor
                    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """What the descriptor heads read: (node features (N, F [+ 2]), edge_index, edge_attr, extra pair
        features (E, 3) or None): the descriptors, with the force invariants where the network has them."""
        if not self.arch.force_features:
            return descriptors, edge_index, edge_attr, None
        node, pair = self.force_features(x[:, 0], edge_index, edge_attr)
        return torch.cat([descriptors, node.to(descriptors.dtype)], dim=1), edge_index, edge_attr, pair


def with_temperature(x: Tensor, temperature: float) -> Tensor:
    """Node features (N, 1) = type → (N, 2) = (type, T): the input of a ``temperature_input`` network."""
    return torch.cat([x, x.new_full((x.shape[0], 1), float(temperature))], dim=1)


def count_parameters(model: nn.Module) -> int:
    """Number of distinct trainable parameters (a shared decoder counts once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
