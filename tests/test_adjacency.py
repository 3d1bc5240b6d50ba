"""gnn.adjacency: the normalised adjacency against an independent float64 construction (entry by
entry), its recorded invariants, the user formats (edge_index, scipy), dropout's exact
transpose, and copies between devices."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gnn import Adjacency, build_adjacency
from gnn.data import UserItemCSR, load_dataset


def random_interactions(rng, n_users, n_items, n_pairs):
    # Power-law-ish item popularity and a few duplicates; the last user and the last item stay
    # isolated.
    item = np.minimum((rng.pareto(1.2, n_pairs) * 2).astype(np.int64), n_items - 2)
    user = rng.integers(0, n_users - 1, n_pairs)
    dup = rng.integers(0, n_pairs, n_pairs // 10)
    return np.concatenate([user, user[dup]]), np.concatenate([item, item[dup]])


def reference_entries(user, item, n_users, n_items, norm, self_loops):
    """{(row, col): value} computed with plain Python dicts in float64."""
    pairs = set(zip(user.tolist(), item.tolist()))
    edges = {}
    for u, i in pairs:
        edges[(u, n_users + i)] = 1.0
        edges[(n_users + i, u)] = 1.0
    n = n_users + n_items
    if norm == "row" and self_loops:
        for v in range(n):
            edges[(v, v)] = 1.0
    deg = np.zeros(n)
    for (r, _c) in edges:
        deg[r] += 1
    out = {}
    for (r, c), one in edges.items():
        out[(r, c)] = one / math.sqrt(deg[r] * deg[c]) if norm == "sym" else one / deg[r]
    if norm == "sym" and self_loops:
        for v in range(n):
            out[(v, v)] = out.get((v, v), 0.0) + 1.0
    return out


def entries_of(adj):
    m = adj.to_scipy().tocoo()
    return {(int(r), int(c)): float(v) for r, c, v in zip(m.row, m.col, m.data)}


def dense(rowptr, col, val, n):
    """Dense float64 matrix of a CSR (tests only; tiny graphs)."""
    rows = torch.repeat_interleave(torch.arange(n), torch.diff(rowptr.cpu()))
    out = torch.zeros(n, n, dtype=torch.float64)
    out.index_put_((rows, col.cpu().long()), val.detach().cpu().double(), accumulate=True)
    return out


def assert_same_adjacency(a, b):
    assert (a.n_users, a.n_items, a.norm, a.self_loops, a.symmetric) == \
        (b.n_users, b.n_items, b.norm, b.self_loops, b.symmetric)
    assert torch.equal(a.rowptr, b.rowptr) and torch.equal(a.col, b.col)
    assert torch.equal(a.val, b.val)


@pytest.fixture
def small_adj():
    user, item = random_interactions(np.random.default_rng(2), 40, 50, 400)
    return build_adjacency(user, item, 40, 50)


# -- build_adjacency -------------------------------------------------------------------------------
@pytest.mark.parametrize("norm,self_loops", [("sym", False), ("sym", True), ("row", False), ("row", True)])
@pytest.mark.parametrize("seed", [0, 1])
def test_adjacency_matches_reference(norm, self_loops, seed):
    rng = np.random.default_rng(seed)
    n_users, n_items = 23, 31
    user, item = random_interactions(rng, n_users, n_items, 120)
    adj = build_adjacency(user, item, n_users, n_items, norm=norm, self_loops=self_loops)
    ref = reference_entries(user, item, n_users, n_items, norm, self_loops)
    got = entries_of(adj)
    assert got.keys() == ref.keys()
    for key, value in ref.items():
        assert got[key] == pytest.approx(value, rel=1e-6), key
    assert adj.rowptr.dtype == torch.int64 and adj.col.dtype == torch.int32
    assert adj.val.dtype == torch.float32 and torch.isfinite(adj.val).all()
    # The adjacency records what it is.
    assert (adj.norm, adj.self_loops, adj.symmetric) == (norm, self_loops, norm == "sym")
    assert (adj.transpose is None) == (norm == "sym")
    rowptr, col = adj.rowptr.numpy(), adj.col.numpy()
    for r in range(adj.n_nodes):  # columns sorted within each row
        assert np.all(np.diff(col[rowptr[r]:rowptr[r + 1]]) > 0)


def test_isolated_nodes_have_no_entries_and_no_nan():
    adj = build_adjacency(np.array([0, 0]), np.array([1, 1]), 3, 4)
    assert adj.nnz == 2 and torch.isfinite(adj.val).all()
    assert adj.val.tolist() == [1.0, 1.0]
    assert torch.diff(adj.rowptr).tolist() == [1, 0, 0, 0, 1, 0, 0]


def test_no_interactions_at_all():
    adj = build_adjacency(UserItemCSR.from_pairs([], [], 3, 2))
    assert adj.nnz == 0 and adj.rowptr.tolist() == [0] * 6


@pytest.mark.parametrize("self_loops", [False, True])
def test_row_normalised_transpose_permutation(self_loops):
    user, item = random_interactions(np.random.default_rng(5), 17, 13, 60)
    adj = build_adjacency(user, item, 17, 13, norm="row", self_loops=self_loops)
    rowptr_t, col_t, perm_t = adj.transpose
    a = dense(adj.rowptr, adj.col, adj.val, adj.n_nodes)
    at = dense(rowptr_t, col_t, adj.val[perm_t], adj.n_nodes)
    assert not torch.equal(a, a.T)  # row normalisation is not symmetric: the check has teeth
    torch.testing.assert_close(at, a.T, rtol=0, atol=0)


def test_dataset_interactions_equal_pairs(tmp_path):
    rng = np.random.default_rng(8)
    lines = ["user,item"] + [f"{u},{i}" for u, i in zip(rng.integers(1, 30, 300),
                                                          rng.integers(100, 140, 300))]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    ds = load_dataset(str(tmp_path / "r.csv"), split="random", seed=0)
    for norm in ("sym", "row"):
        from_csr = build_adjacency(ds.train_csr, norm=norm)
        from_pairs = build_adjacency(*ds.train, ds.n_users, ds.n_items, norm=norm)
        assert_same_adjacency(from_csr, from_pairs)
        assert from_csr.interactions == ds.train_csr


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="item ids"):
        build_adjacency(np.array([0]), np.array([5]), 2, 5)
    with pytest.raises(ValueError, match="norm"):
        build_adjacency(np.array([0]), np.array([1]), 2, 5, norm="left")
    with pytest.raises(TypeError, match="UserItemCSR"):
        build_adjacency(np.array([0]), np.array([1]))
    csr = UserItemCSR.from_pairs([0], [1], 2, 5)
    with pytest.raises(TypeError, match="no item"):
        build_adjacency(csr, np.array([1]), 2, 5)


# -- user formats --------------------------------------------------------------------------------
@pytest.mark.parametrize("norm,self_loops", [("sym", False), ("row", True)])
def test_from_edge_index_users_in_row_0_items_in_row_1(norm, self_loops):
    user, item = random_interactions(np.random.default_rng(3), 9, 12, 50)
    want = build_adjacency(user, item, 9, 12, norm=norm, self_loops=self_loops)
    edge_index = torch.from_numpy(np.stack([user, item]))  # items 0-based, not offset by 9
    for given in (edge_index, edge_index.int(), edge_index.numpy(), edge_index.tolist()):
        got = Adjacency.from_edge_index(given, 9, 12, norm=norm, self_loops=self_loops)
        assert_same_adjacency(got, want)
    # Direction matters: (user, item), not (item, user).
    swapped = Adjacency.from_edge_index(torch.tensor([[1], [0]]), 9, 12)
    assert entries_of(swapped).keys() == {(1, 9), (9, 1)}


@pytest.mark.parametrize("shape", [(3, 4), (4, 2), (6,)])
def test_from_edge_index_wrong_shape(shape):
    with pytest.raises(ValueError, match=r"shape \(2, E\)"):
        Adjacency.from_edge_index(torch.zeros(shape, dtype=torch.int64), 5, 5)


def test_from_edge_index_float_dtype():
    with pytest.raises(TypeError, match="integer"):
        Adjacency.from_edge_index(torch.tensor([[0.0, 1.0], [1.0, 2.0]]), 5, 5)


def test_from_edge_index_node_ids_offset_by_num_users_are_understood():
    n_users, n_items = 5, 4
    pairs = torch.tensor([[0, 1, 4], [0, 3, 2]])
    homogeneous = pairs + torch.tensor([[0], [n_users]])
    assert_same_adjacency(Adjacency.from_edge_index(homogeneous, n_users, n_items),
                          Adjacency.from_edge_index(pairs, n_users, n_items))
    with pytest.raises(ValueError, match="item ids .* must lie in"):  # beyond N: not offset
        Adjacency.from_edge_index(torch.tensor([[0], [4 + n_users + n_items]]), n_users, n_items)
    with pytest.raises(ValueError, match="ids must be >= 0"):
        Adjacency.from_edge_index(torch.tensor([[-1], [0]]), n_users, n_items)


def test_from_scipy_counts_each_stored_non_zero_once():
    user, item = random_interactions(np.random.default_rng(4), 11, 14, 60)
    want = build_adjacency(user, item, 11, 14, norm="row")
    # Values are ignored (5.0 and 1.0 alike), repeats collapse, explicit zeros are no interaction.
    data = np.where(np.arange(user.size) % 2, 5.0, 1.0)
    coo = sp.coo_matrix((np.r_[data, 0.0], (np.r_[user, 10], np.r_[item, 13])), shape=(11, 14))
    for matrix in (coo, coo.tocsr(), coo.tocsc()):
        assert_same_adjacency(Adjacency.from_scipy(matrix, norm="row"), want)
    loops = Adjacency.from_scipy(coo, self_loops=True)
    assert loops.self_loops and loops.norm == "sym"
    with pytest.raises(TypeError, match="scipy sparse"):
        Adjacency.from_scipy(coo.toarray())


# -- dropout and new values ----------------------------------------------------------------------
def test_dropout_masks_values_and_keeps_structure(small_adj):
    adj = small_adj
    dropped = adj.dropout(0.25, generator=torch.Generator().manual_seed(0))
    assert dropped.col is adj.col and dropped.rowptr is adj.rowptr
    kept = dropped.val != 0
    assert 0.6 < kept.float().mean() < 0.9
    torch.testing.assert_close(dropped.val[kept], adj.val[kept] / 0.75)
    assert dropped.norm == "sym" and not dropped.self_loops
    assert adj.dropout(0.0) is adj
    with pytest.raises(ValueError, match="p must be"):
        adj.dropout(1.0)


def test_dropout_is_reproducible_under_manual_seed(small_adj):
    torch.manual_seed(3)
    a = small_adj.dropout(0.3)
    torch.manual_seed(3)
    b = small_adj.dropout(0.3)
    assert torch.equal(a.val, b.val)
    assert not torch.equal(a.val, small_adj.dropout(0.3).val)


@pytest.mark.parametrize("norm", ["sym", "row"])
def test_dropout_result_carries_the_exact_transpose(norm):
    user, item = random_interactions(np.random.default_rng(6), 19, 23, 90)
    adj = build_adjacency(user, item, 19, 23, norm=norm)
    dropped = adj.dropout(0.4, generator=torch.Generator().manual_seed(1))
    masked = dense(dropped.rowptr, dropped.col, dropped.val, adj.n_nodes)
    assert not torch.equal(masked, masked.T)  # independent masks break symmetry
    assert not dropped.symmetric and dropped.transpose is not None
    rowptr_t, col_t, perm_t = dropped.transpose
    transposed = dense(rowptr_t, col_t, dropped.val[perm_t], adj.n_nodes)
    torch.testing.assert_close(transposed, masked.T, rtol=0, atol=0)


def test_with_values_gives_a_non_symmetric_adjacency(small_adj):
    val = torch.rand(small_adj.nnz, generator=torch.Generator().manual_seed(2))
    out = small_adj.with_values(val)
    assert out.val is val and out.norm == "custom" and not out.symmetric
    rowptr_t, col_t, perm_t = out.transpose
    a = dense(out.rowptr, out.col, out.val, out.n_nodes)
    torch.testing.assert_close(dense(rowptr_t, col_t, val[perm_t], out.n_nodes), a.T, rtol=0, atol=0)


def test_with_values_wrong_shape(small_adj):
    with pytest.raises(ValueError, match="with_values.*values"):
        small_adj.with_values(torch.ones(small_adj.nnz + 1))
    with pytest.raises(ValueError, match="with_values"):
        small_adj.with_values(small_adj.val.numpy())


def test_with_values_wrong_device(small_adj):
    with pytest.raises(ValueError, match="must be on cpu"):
        small_adj.with_values(torch.ones(small_adj.nnz, device="meta"))


# -- devices -------------------------------------------------------------------------------------
def test_to_the_same_device_returns_itself(small_adj):
    assert small_adj.to("cpu") is small_adj
    assert small_adj.to(torch.device("cpu")) is small_adj


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("norm", ["sym", "row"])
def test_cuda_to_cpu_copy_has_landed_while_the_stream_is_busy(norm):
    # Issue 13, finding 2: a non-blocking device -> host copy returns before the data lands.
    user, item = random_interactions(np.random.default_rng(7), 300, 400, 5000)
    adj = build_adjacency(user, item, 300, 400, norm=norm)
    on_gpu = adj.to("cuda")
    torch.cuda.synchronize()
    torch.cuda._sleep(int(1e8))  # keep the stream busy: the copy queues behind this
    back = on_gpu.to("cpu")
    assert back.val.device.type == "cpu"
    assert torch.equal(back.val, adj.val)
    assert torch.equal(back.col, adj.col) and torch.equal(back.rowptr, adj.rowptr)
    if norm == "row":
        for got, want in zip(back.transpose, adj.transpose):
            assert torch.equal(got, want)
