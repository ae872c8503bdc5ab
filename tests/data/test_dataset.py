import numpy as np
import pytest
import torch

from hpc_botan.data.dataset import TargetsDataset
from hpc_botan.errors import UserError
from hpc_botan.io.shards import ConfigurationMeta, write_index, write_shard
from hpc_botan.physics.configuration_targets import compute_targets


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    """Four synthetic configurations (two train, two test) in two shards."""
    rng = np.random.default_rng(2)
    box = np.array([6.0, 6.0, 6.0])
    items, metas = [], {}
    for cid in range(4):
        x0 = rng.uniform(size=(120, 3)) * box
        species = (rng.uniform(size=120) < 0.2).astype(np.int8)
        runs = x0 + np.cumsum(rng.normal(scale=0.05, size=(4, 3, 120, 3)), axis=1)
        meta = ConfigurationMeta(cid, 0.64, 0, cid, "train" if cid < 2 else "test", f"synthetic {cid}")
        metas[cid] = meta
        items.append((meta, compute_targets(x0, species, box, runs, np.array([0.1, 1.0, 10.0]))))
    d = tmp_path_factory.mktemp("targets")
    write_shard(d / "shard-00000.h5", 0, 2, items[:2])
    write_shard(d / "shard-00001.h5", 1, 2, items[2:])
    return write_index(d, ["shard-00000.h5", "shard-00001.h5"], metas), items


def test_items_are_full_graphs_with_chosen_time_points(index):
    path, items = index
    ds = TargetsDataset(path, time_indices=[0, 2], split="test")
    assert len(ds) == 2
    g = ds[1]
    expected = items[3][1]
    assert g.conf_id == 3 and g.num_nodes == 120
    assert g.x.shape == (120, 1) and g.x.dtype == torch.float32
    assert torch.equal(g.edge_index, torch.from_numpy(expected.edge_index))
    assert g.y_node.shape == (120, 2) and g.y_edge.shape == (expected.edge_index.shape[1], 2)
    np.testing.assert_array_equal(g.y_node[:, 1].numpy(), expected.propensity[2])
    np.testing.assert_array_equal(g.y_edge[:, 0].numpy(), expected.pair_change[0])
    np.testing.assert_allclose(g.times.numpy(), [[0.1, 10.0]])
    assert TargetsDataset(path, split="train").catalog["id"].tolist() == [0, 1]


def test_loader_workers_open_their_own_files(index):
    from torch_geometric.loader import DataLoader

    path, items = index
    ds = TargetsDataset(path)
    ds[0]  # open a handle in the parent first: workers must not reuse it
    loader = DataLoader(ds, batch_size=1, num_workers=2, shuffle=False)
    ids = [int(batch.conf_id) for batch in loader]
    assert ids == [0, 1, 2, 3]


def test_bad_index_and_time_index(index, tmp_path):
    with pytest.raises(UserError, match="cannot open"):
        TargetsDataset(tmp_path / "none.h5")
    path, _ = index
    with pytest.raises(UserError, match="has 3 time points"):
        TargetsDataset(path, time_indices=[5])[0]


def test_only_trained_rows_are_read_in_any_order(index):
    """Time indices out of order, repeated or from the end come back in the order asked."""
    from hpc_botan.io.shards import IndexReader

    path, items = index
    arrays = IndexReader(path).training_arrays(1, [2, -3, 2])
    expected = items[1][1]
    np.testing.assert_array_equal(arrays["y_node"], expected.propensity[[2, 0, 2]])
    np.testing.assert_array_equal(arrays["y_edge"], expected.pair_change[[2, 0, 2]])
    np.testing.assert_allclose(arrays["times"], [10.0, 0.1, 10.0])


def test_the_learned_targets_come_from_the_registry(index):
    """train.node_target: R puts the cage-relative displacement in y_node (with no recorded reliability);
    a target of the wrong level or an unknown one is a one-line error naming the key."""
    from hpc_botan.errors import ConfigError

    path, items = index
    graph = TargetsDataset(path, time_indices=[0, 2], node_target="R")[1]
    expected = items[1][1]
    np.testing.assert_array_equal(graph.y_node.numpy(), expected.cage_relative[[0, 2]].T)
    np.testing.assert_array_equal(graph.y_edge.numpy(), expected.pair_change[[0, 2]].T)
    assert torch.isnan(graph.reliability_node).all() and not torch.isnan(graph.reliability_edge).any()
    with pytest.raises(ConfigError, match="train.node_target: 'E' is not a registered node target"):
        TargetsDataset(path, node_target="E")
    with pytest.raises(ConfigError, match="train.edge_target: 'Q' is not a registered edge target .*: E"):
        TargetsDataset(path, edge_target="Q")
