"""Spatial domains (hpc_botan.predict.domains): the slabs' graphs are the whole graph's, the halo
exchange reproduces the whole-graph forward, and ``mpirun -n 2 hpc-botan predict`` writes what one
process writes."""
from __future__ import annotations

import subprocess
import sys
import threading

import h5py
import numpy as np
import pytest
import torch

from hpc_botan.errors import UserError
from hpc_botan.model import BotanArchitecture
from hpc_botan.physics.configuration_targets import GRAPH_CUTOFF
from hpc_botan.physics.neighbors import edge_vectors, neighbor_pairs
from hpc_botan.physics.pbc import tile
from hpc_botan.plan.world import resolve_launcher
from hpc_botan.predict.domains import Domain, assemble_edges, domain_graph, halo_plan, requested_particles, slabs_for
from tests.model.test_bounded_memory import randomised
from tests.predict.test_command import structure, trained_run, write_data  # noqa: F401  (fixtures)
from tests.predict.test_export import exported  # noqa: F401  (fixture)


def liquid(n=400, density=1.2, seed=0, elongated=1.0):
    """Random positions (no overlaps needed for graphs), 80:20 species, a box of the given density (σ)."""
    rng = np.random.default_rng(seed)
    side = (n / density / elongated) ** (1 / 3)
    box = np.array([side * elongated, side, side])
    return rng.uniform(0, 1, (n, 3)) * box, (rng.uniform(size=n) < 0.2).astype(np.int8), box


@pytest.mark.parametrize("n_domains", [2, 3, 4])
def test_the_domains_hold_the_whole_graph_once_in_order(n_domains):
    positions, _, box = liquid(elongated=2.5)
    whole = neighbor_pairs(positions, box, GRAPH_CUTOFF)
    slabs = slabs_for(box, n_domains, GRAPH_CUTOFF)
    assert slabs.axis == 0   # the longest edge
    domains = [domain_graph(positions, box, slabs, k, GRAPH_CUTOFF) for k in range(n_domains)]
    owned = np.concatenate([d.nodes[d.own] for d in domains])
    np.testing.assert_array_equal(np.sort(owned), np.arange(len(positions)))   # each particle owned once
    for d in domains:
        g = d.global_edges
        assert d.own[d.edge_index[1]].all()                        # edges into own particles only
        np.testing.assert_array_equal(g, whole[:, np.isin(whole[1], d.nodes[d.own])])   # all of them, in order
        np.testing.assert_allclose(d.edge_attr, edge_vectors(positions, g, box))
        sources = np.zeros(len(d.nodes), bool)
        sources[d.edge_index[0]] = True
        assert (d.own | sources).all()                              # no row that nothing reads
    order = assemble_edges([d.global_edges for d in domains])
    np.testing.assert_array_equal(np.concatenate([d.global_edges for d in domains], axis=1)[:, order], whole)


def test_a_slab_thinner_than_the_cutoff_is_refused():
    box = np.array([9.0, 6.0, 6.0])
    with pytest.raises(UserError, match=r"at most 4 ranks"):
        slabs_for(box, 5, GRAPH_CUTOFF, "big.data")


class ThreadedHalo:
    """The exchange of :class:`~hpc_botan.predict.domains.MpiHalo` between threads (one per domain) of one
    process: each posts its rows, waits for every domain, reads its ghosts."""

    def __init__(self, domains: list[Domain]):
        self.domains = domains
        requests = [requested_particles(d) for d in domains]
        self.plans = [halo_plan(d, {q: requests[q][k] for q in range(len(domains)) if k in requests[q]})
                      for k, d in enumerate(domains)]
        self.barrier = threading.Barrier(len(domains))
        self.mailbox: dict[tuple[int, int], torch.Tensor] = {}
        self.calls = [0] * len(domains)

    def for_domain(self, k: int):
        def exchange(t: torch.Tensor) -> torch.Tensor:
            self.calls[k] += 1
            for q, rows in self.plans[k].send.items():
                self.mailbox[k, q] = t[torch.from_numpy(rows)].clone()
            self.barrier.wait()
            for q, rows in self.plans[k].receive.items():
                t[torch.from_numpy(rows)] = self.mailbox[q, k]
            self.barrier.wait()
            return t
        return exchange


@pytest.mark.parametrize("arch", [
    BotanArchitecture(width=16, n_steps=3),
    BotanArchitecture(width=8, n_steps=2, shared_weights=False, separate_decoders=True, n_outputs=2,
                      descriptor_shells=(1.0, 1.3), descriptor_lengths=(0.0, 1.0), force_features="shifted_force"),
])
@pytest.mark.parametrize("n_domains", [2, 3])
def test_domains_with_the_halo_exchange_equal_the_whole_graph(arch, n_domains):
    """Every domain's own nodes and edges, predicted with ghost exchange, equal the whole graph's
    predictions: the force invariants of ghosts included (they need the exchange too)."""
    positions, species, box = liquid(n=300, elongated=2.0, seed=1)
    whole = neighbor_pairs(positions, box, GRAPH_CUTOFF)
    x = torch.from_numpy(species.astype(np.float32)).unsqueeze(1)
    vectors = torch.from_numpy(edge_vectors(positions, whole, box).astype(np.float32))
    descriptors = torch.randn(len(positions), arch.n_descriptors) if arch.n_descriptors else None
    model = randomised(arch)
    with torch.no_grad():
        want_node, want_edge = model(x, torch.from_numpy(whole), vectors, descriptors)
    slabs = slabs_for(box, n_domains, GRAPH_CUTOFF)
    domains = [domain_graph(positions, box, slabs, k, GRAPH_CUTOFF) for k in range(n_domains)]
    halo = ThreadedHalo(domains)
    results: dict[int, tuple] = {}

    def run(k: int):
        d = domains[k]
        extra = None if descriptors is None else descriptors[torch.from_numpy(d.nodes)]
        results[k] = model.forward_in_edge_chunks(
            x[torch.from_numpy(d.nodes)], torch.from_numpy(d.edge_index), torch.from_numpy(d.edge_attr.astype(np.float32)),
            extra, chunk_edges=97, halo=halo.for_domain(k))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n_domains)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == n_domains
    assert halo.calls == [arch.n_steps + bool(arch.force_features)] * n_domains   # once per step (+ the forces)
    position = {tuple(e): i for i, e in enumerate(whole.T.tolist())}
    for k, d in enumerate(domains):
        node, edge = results[k]
        torch.testing.assert_close(node[torch.from_numpy(d.own)], want_node[torch.from_numpy(d.nodes[d.own])],
                                   rtol=1e-5, atol=1e-5)
        rows = torch.tensor([position[tuple(e)] for e in d.global_edges.T.tolist()])
        torch.testing.assert_close(edge, want_edge[rows], rtol=1e-5, atol=1e-5)


def _mpirun(*args: str, n: int) -> subprocess.CompletedProcess:
    return subprocess.run([*resolve_launcher("mpirun"), "-n", str(n), sys.executable, "-m", "hpc_botan", *args],
                          capture_output=True, text=True, timeout=600)


def test_two_mpi_ranks_predict_what_one_process_predicts(trained_run, structure, tmp_path, need_mpirun):  # noqa: F811
    """A tiled structure (3 × 1 × 1 copies of a trained configuration) through ``mpirun -n 2 hpc-botan predict``:
    every array of the output equals the one-process output (edge order, S_i and E_ij of every BOTAN and NT-GNN
    replica to 1e-5), in small edge chunks on both sides."""
    positions, species, box = tile(*structure, (3, 1, 1))
    data = write_data(tmp_path / "tiled.data", positions, species, box)
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    for out, n in ((one, 1), (two, 2)):
        res = _mpirun("predict", str(trained_run), str(data), "--out", str(out), "--memory-gb", "0.001",
                      "--no-progress", n=n)
        assert res.returncode == 0, res.stderr[-3000:]
        assert ("in 2 slabs along x" in res.stderr) == (n == 2), res.stderr[-3000:]   # two domains, not two copies
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.h5", "tiled.data", "two.h5"]   # rank 0 alone wrote
    compared = []
    with h5py.File(one) as a, h5py.File(two) as b:
        def same(name, item):
            if isinstance(item, h5py.Dataset):
                other = b[name][()]
                if item.dtype.kind == "f":
                    np.testing.assert_allclose(other, item[()], rtol=1e-5, atol=1e-5, err_msg=name)
                else:
                    np.testing.assert_array_equal(other, item[()], err_msg=name)
                compared.append(name)
        a.visititems(same)
        assert sorted(b["structures/00000"].keys()) == sorted(a["structures/00000"].keys())
        assert a["structures/00000"].attrs["n_edges"] == b["structures/00000"].attrs["n_edges"] > 0
    assert any("ntgnn" in name and "S_replicas" in name for name in compared)
    assert any("botan" in name and "E_replicas" in name for name in compared)


def test_too_many_ranks_for_the_box_is_one_line(trained_run, structure, tmp_path, need_mpirun):  # noqa: F811
    data = write_data(tmp_path / "small.data", *structure)
    res = _mpirun("predict", str(trained_run), str(data), "--out", str(tmp_path / "p.h5"), "--no-progress", n=4)
    assert res.returncode != 0
    assert "use at most" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "p.h5").exists()


def test_an_exported_model_over_two_ranks_predicts_what_one_process_predicts(exported, structure, tmp_path,  # noqa: F811
                                                                              need_mpirun):
    """The exported file's networks take the same bounded-memory, halo-exchanging path."""
    positions, species, box = tile(*structure, (3, 1, 1))
    data = write_data(tmp_path / "tiled.data", positions, species, box)
    outputs = []
    for n in (1, 2):
        outputs.append(tmp_path / f"p{n}.h5")
        res = _mpirun("predict", str(exported), str(data), "--out", str(outputs[-1]), "--memory-gb", "0.001",
                      "--no-progress", n=n)
        assert res.returncode == 0, res.stderr[-3000:]
    with h5py.File(outputs[0]) as a, h5py.File(outputs[1]) as b:
        group = "structures/00000/predictions/botan"
        names = []
        a[group].visit(names.append)
        means = [m for m in names if m.endswith(("S_mean", "E_mean"))]
        assert len(means) >= 2
        for name in means:
            np.testing.assert_allclose(b[f"{group}/{name}"][()], a[f"{group}/{name}"][()], rtol=1e-5, atol=1e-5)
