"""The 1-D row partition: nnz balance, the halo, the local CSR against the global Â (one
process, no communication)."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gnn.distributed import Partition, local_graph, nnz_balanced_bounds
from gnn.distributed.partition import partition_stats
from random_graphs import random_adjacency


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("world", [1, 2, 3, 5, 8])
def test_blocks_are_contiguous_and_balanced_within_one_row(seed, world):
    adj = random_adjacency(seed)
    bounds = nnz_balanced_bounds(adj.rowptr, world)
    assert bounds[0] == 0 and bounds[-1] == adj.n_nodes and len(bounds) == world + 1
    assert all(b > a for a, b in zip(bounds, bounds[1:]))  # every rank owns a node
    rowptr = adj.rowptr.numpy()
    per_rank = np.diff(rowptr[bounds])
    heaviest = np.diff(rowptr).max()
    assert np.abs(per_rank - adj.nnz / world).max() <= heaviest


@pytest.mark.parametrize("world", [2, 3, 4, 8])
def test_nnz_within_ten_percent_when_no_row_is_too_heavy(world):
    # Uniform degrees: the heaviest row is far below a tenth of nnz / P.
    adj = random_adjacency(7, n_users=400, n_items=500, density=0.05, skew=False)
    assert np.diff(adj.rowptr.numpy()).max() < 0.1 * adj.nnz / world
    part = Partition.of(adj, world)
    for r in range(world):
        assert abs(local_graph(adj, part, r).nnz - adj.nnz / world) <= 0.1 * adj.nnz / world


def test_world_size_larger_than_the_graph_is_refused():
    adj = random_adjacency(0, n_users=2, n_items=3, density=1.0, skew=False)
    with pytest.raises(ValueError, match="world size 6 is larger than the number of nodes"):
        Partition.of(adj, 6)
    with pytest.raises(ValueError, match="positive int"):
        nnz_balanced_bounds(adj.rowptr, 0)


@pytest.mark.parametrize("norm, self_loops", [("sym", False), ("row", True)])
@pytest.mark.parametrize("world", [2, 3, 5])
def test_local_graph_is_the_global_rows_over_own_and_halo(world, norm, self_loops):
    adj = random_adjacency(world, norm=norm, self_loops=self_loops)
    a = adj.to_scipy()
    part = Partition.of(adj, world)
    x = np.random.default_rng(1).standard_normal((adj.n_nodes, 7))
    for r in range(world):
        g = local_graph(adj, part, r)
        lo, hi = part.rows(r)
        block = a[lo:hi]
        referenced = np.unique(block.indices)
        remote = referenced[(referenced < lo) | (referenced >= hi)]
        assert g.halo.tolist() == remote.tolist()  # exactly the remote rows it references
        assert g.n_below == int((remote < lo).sum())
        buffer_ids = np.concatenate([remote[remote < lo], np.arange(lo, hi), remote[remote >= hi]])
        local = sp.csr_matrix((g.val.double().numpy(), g.col.numpy(), g.rowptr.numpy()),
                              shape=(hi - lo, g.n_buffer))
        np.testing.assert_allclose(local @ x[buffer_ids], block @ x, rtol=1e-6, atol=1e-9)
        start, end = g.entries
        assert torch.equal(g.val, adj.val[start:end])  # global entry order: dropout masks slice
        cols = g.col.numpy()
        rows_sorted = all(np.all(np.diff(cols[s:e]) > 0)
                          for s, e in zip(g.rowptr[:-1].tolist(), g.rowptr[1:].tolist()))
        assert rows_sorted
        rt, ct, pt = g.transpose
        local_t = sp.csr_matrix((g.val[pt].double().numpy(), ct.numpy(), rt.numpy()),
                                shape=(g.n_buffer, hi - lo))
        assert abs(local_t - local.T).max() == 0


def test_owner_and_partition_stats_agree_with_the_halos():
    adj = random_adjacency(4)
    part = Partition.of(adj, 4)
    nodes = torch.arange(adj.n_nodes)
    owners = part.owner(nodes)
    for r in range(4):
        lo, hi = part.rows(r)
        assert torch.all(owners[lo:hi] == r)
    stats = partition_stats(adj.rowptr, adj.col, part.bounds)
    halos = [local_graph(adj, part, r).halo for r in range(4)]
    assert [s["halo_rows"] for s in stats] == [h.numel() for h in halos]
    assert sum(s["sent_rows"] for s in stats) == sum(h.numel() for h in halos)
    for r in range(4):
        lo, hi = part.rows(r)
        assert stats[r]["sent_rows"] == sum(int(((h >= lo) & (h < hi)).sum()) for h in halos)
