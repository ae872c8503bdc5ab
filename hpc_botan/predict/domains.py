"""Spatial domains: one structure's graph cut into K slabs, one per MPI rank, with a one-hop halo.

``mpirun -n K hpc-botan predict …`` cuts the box into K slabs of equal width along its longest edge.
Rank k owns the particles of slab k and holds the graph edges *into* them (every edge i → j with j its
own), their sources from the neighbouring slabs as ghosts, and nothing else.  Message passing then
needs the ghosts' node states once per step, sent by their owners (:class:`MpiHalo`: neighbour
messages only, point to point).  A 7-hop halo without messages would hold 7 × 2 σ = 14 σ of
neighbouring slab on each side: for 884,736 particles over 2 ranks, 716,688 particles per rank against
476,028 with the one-hop halo (docs/benchmarks.md), so the one-hop halo with exchange is what is built.
Its exchange sends ghosts × W floats per step (34,260 × 64 there: 8.8 MB).

Every rank reads the whole structure (N × 3 positions: 21 MB at 10⁶ particles) and searches
neighbours only around its slab.  The edges of all ranks together are the whole graph's (each edge
belongs to the rank that owns its destination), gathered on rank 0 in the whole graph's (i, j)
order: :func:`assemble_edges`.  Pure numpy here except :class:`MpiHalo`; units σ.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hpc_botan.errors import UserError
from hpc_botan.physics.neighbors import edge_vectors, neighbor_pairs
from hpc_botan.physics.pbc import wrap


@dataclass(frozen=True)
class Slabs:
    """K slabs of equal width along ``axis`` (0, 1, 2) of a box (3,) σ."""

    n_domains: int
    axis: int
    box: np.ndarray

    @property
    def width(self) -> float:
        return float(self.box[self.axis]) / self.n_domains

    def coordinate(self, positions: np.ndarray) -> np.ndarray:
        """(N,) the coordinate along the slabs' axis of each position (N, 3) σ, wrapped into [0, L)."""
        return wrap(np.asarray(positions, dtype=np.float64), self.box)[:, self.axis]

    def owner(self, positions: np.ndarray) -> np.ndarray:
        """(N,) int64: the slab of each position (N, 3) σ, any periodic image."""
        return self.slab_of(self.coordinate(positions))

    def slab_of(self, coordinate: np.ndarray) -> np.ndarray:
        """(N,) int64: the slab of each wrapped coordinate along the axis (:meth:`coordinate`)."""
        return np.minimum((coordinate / self.width).astype(np.int64), self.n_domains - 1)


def slabs_for(box: np.ndarray, n_domains: int, cutoff: float, source: str = "structure") -> Slabs:
    """Slabs along the longest edge of ``box``; a one-line :class:`UserError` where a slab would be thinner
    than ``cutoff`` (σ), since ghosts must then come from beyond the neighbouring slabs."""
    box = np.asarray(box, dtype=np.float64)
    axis = int(np.argmax(box))
    slabs = Slabs(int(n_domains), axis, box)
    if n_domains > 1 and slabs.width < cutoff:
        raise UserError(f"{source}: {n_domains} ranks cut the box ({box[axis]:g} σ along its longest edge) into "
                        f"slabs {slabs.width:.3g} σ wide, thinner than the graph cutoff {cutoff:g} σ; use at most "
                        f"{int(box[axis] // cutoff)} ranks for this structure")
    return slabs


@dataclass
class Domain:
    """Rank ``rank``'s part of the graph; local node rows are the global particles ``nodes`` (increasing)."""

    rank: int
    nodes: np.ndarray        # (n,) int64 global particle index of each local row, increasing
    own: np.ndarray          # (n,) bool: the row's particle is this domain's (else a ghost)
    edge_index: np.ndarray   # (2, e) int64 local rows (source, destination): the edges into own particles,
    #                          in the whole graph's (i, j) order
    edge_attr: np.ndarray    # (e, 3) float64 r_j − r_i (minimum image), σ
    ghost_owner: np.ndarray  # (n,) int64 rank owning each row's particle (= rank for own rows)

    @property
    def global_edges(self) -> np.ndarray:
        """(2, e) int64: the edges in global particle indices."""
        return self.nodes[self.edge_index]


def domain_graph(positions: np.ndarray, box: np.ndarray, slabs: Slabs, rank: int, cutoff: float) -> Domain:
    """The graph edges (|r_ij| < ``cutoff``, σ) into the particles of slab ``rank`` and their sources.

    Neighbours are searched among the particles of the slab and of the ``cutoff``-thick layers beside it
    (periodic): every source of an edge into the slab lies there.  Equal, edge for edge and in order, to
    the rows of :func:`hpc_botan.physics.neighbors.neighbor_pairs` of the whole structure whose destination
    is in the slab."""
    positions = np.asarray(positions, dtype=np.float64)
    box = np.asarray(box, dtype=np.float64)
    coordinate = slabs.coordinate(positions)
    owner = slabs.slab_of(coordinate)
    length, width = float(box[slabs.axis]), slabs.width
    # distance along the axis from the slab [lo, lo + width), periodic
    lo = rank * width
    offset = np.mod(coordinate - lo, length)          # 0 … width inside, beyond: right side, then wrapping left
    outside = np.minimum(np.maximum(offset - width, 0.0), length - offset)
    candidates = np.flatnonzero((owner == rank) | (outside < cutoff))   # increasing global indices
    local = neighbor_pairs(positions[candidates], box, cutoff)          # sorted by (local i, local j)
    into_own = owner[candidates[local[1]]] == rank
    local = local[:, into_own]
    rows = np.union1d(np.flatnonzero(owner[candidates] == rank), local[0])   # own particles and the ghosts
    renumber = np.full(len(candidates), -1, dtype=np.int64)
    renumber[rows] = np.arange(len(rows))
    nodes = candidates[rows]
    edge_index = renumber[local]
    vectors = edge_vectors(positions, nodes[edge_index], box)
    return Domain(rank, nodes, owner[nodes] == rank, edge_index, vectors, owner[nodes])


def assemble_edges(global_edges: list[np.ndarray]) -> np.ndarray:
    """The permutation (E,) that puts the concatenated edges of every domain ((2, e_k) each, global
    indices) in the whole graph's (i, j) order."""
    both = np.concatenate(global_edges, axis=1) if global_edges else np.zeros((2, 0), dtype=np.int64)
    return np.lexsort((both[1], both[0]))


@dataclass
class HaloPlan:
    """Which local rows a domain receives from and sends to each peer rank."""

    receive: dict[int, np.ndarray]   # peer → local rows (ghosts owned by the peer), increasing global index
    send: dict[int, np.ndarray]      # peer → local rows (own particles the peer holds as ghosts), in its order


def requested_particles(domain: Domain) -> dict[int, np.ndarray]:
    """Peer → global indices (increasing) of the ghosts this domain needs from it."""
    ghosts = np.flatnonzero(~domain.own)
    return {int(q): domain.nodes[ghosts[domain.ghost_owner[ghosts] == q]]
            for q in np.unique(domain.ghost_owner[ghosts])}


def halo_plan(domain: Domain, requests_to_me: dict[int, np.ndarray]) -> HaloPlan:
    """The plan of ``domain`` given what each peer asked of it (peer → global indices, from
    :func:`requested_particles` on the peer)."""
    receive = {}
    ghosts = np.flatnonzero(~domain.own)
    for q in np.unique(domain.ghost_owner[ghosts]):
        receive[int(q)] = ghosts[domain.ghost_owner[ghosts] == q]
    send = {}
    for q, wanted in requests_to_me.items():
        rows = np.searchsorted(domain.nodes, wanted)
        if len(wanted) and (rows.max() >= len(domain.nodes) or (domain.nodes[rows] != wanted).any()
                            or not domain.own[rows].all()):
            raise RuntimeError(f"rank {q} asked rank {domain.rank} for particles it does not own")
        send[int(q)] = rows
    return HaloPlan(receive, send)


class MpiHalo:
    """The ghost exchange of one domain over MPI (:data:`hpc_botan.model.bounded_memory.HaloExchange`):
    ``halo(t)`` sends the rows of ``t`` (n, C) that peers hold as ghosts and fills this domain's ghost rows
    with theirs, point to point between neighbouring domains only; returns ``t``."""

    def __init__(self, comm, domain: Domain):
        requests = requested_particles(domain)
        # every rank learns what each peer needs from it (once per structure; lists of ghost indices)
        incoming = comm.alltoall([requests.get(q, np.zeros(0, dtype=np.int64)) for q in range(comm.size)])
        self.comm = comm
        self.plan = halo_plan(domain, {q: ids for q, ids in enumerate(incoming) if len(ids)})
        self._receive_rows = {q: torch.from_numpy(rows) for q, rows in self.plan.receive.items()}

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        from mpi4py import MPI  # here: importing mpi4py initialises MPI, which only launched ranks may do

        host = tensor.detach().to("cpu", torch.float32).numpy()
        width = host.shape[1]
        received = {q: np.empty((len(rows), width), dtype=np.float32) for q, rows in self.plan.receive.items()}
        sent = {q: np.ascontiguousarray(host[rows]) for q, rows in self.plan.send.items()}
        pending = [self.comm.Irecv(buffer, source=q, tag=7) for q, buffer in received.items()]
        pending += [self.comm.Isend(buffer, dest=q, tag=7) for q, buffer in sent.items()]
        MPI.Request.Waitall(pending)
        for q, rows in self._receive_rows.items():
            tensor[rows.to(tensor.device)] = torch.from_numpy(received[q]).to(tensor)
        return tensor


#: The largest single message (bytes): MPI counts are C ints, so bigger arrays go in pieces.
MAX_MESSAGE_BYTES = 1 << 30


def gather_to_root(comm, arrays: list[np.ndarray]) -> list[list[np.ndarray]] | None:
    """Every rank's ``arrays`` on rank 0, in rank order (rank 0's own first); None on the other ranks,
    which send theirs point to point (one message per piece of at most :data:`MAX_MESSAGE_BYTES`)."""
    if comm.rank != 0:
        arrays = [np.ascontiguousarray(a) for a in arrays]
        comm.send([(a.shape, a.dtype.str) for a in arrays], dest=0, tag=11)
        for a in arrays:
            flat = a.reshape(-1).view(np.uint8)
            for start in range(0, len(flat), MAX_MESSAGE_BYTES):
                comm.Send(flat[start:start + MAX_MESSAGE_BYTES], dest=0, tag=12)
        return None
    parts = [list(arrays)]
    for q in range(1, comm.size):
        received = []
        for shape, dtype in comm.recv(source=q, tag=11):
            buffer = np.empty(shape, dtype=dtype)
            flat = buffer.reshape(-1).view(np.uint8)
            for start in range(0, len(flat), MAX_MESSAGE_BYTES):
                comm.Recv(flat[start:start + MAX_MESSAGE_BYTES], source=q, tag=12)
            received.append(buffer)
        parts.append(received)
    return parts
