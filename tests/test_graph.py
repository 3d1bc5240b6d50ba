"""The normalised adjacency against an independent float64 construction (entry by entry)."""
import math

import numpy as np
import pytest
import torch

from gnn.graph import build_adjacency


def random_interactions(rng, n_users, n_items, n_pairs):
    # Power-law-ish item popularity and a few duplicates; some users and items stay isolated.
    item = np.minimum((rng.pareto(1.2, n_pairs) * 2).astype(np.int64), n_items - 2)
    user = rng.integers(0, n_users - 1, n_pairs)  # the last user is isolated
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
        if norm == "sym":
            out[(r, c)] = one / math.sqrt(deg[r] * deg[c])
        else:
            out[(r, c)] = one / deg[r]
    if norm == "sym" and self_loops:
        for v in range(n):
            out[(v, v)] = out.get((v, v), 0.0) + 1.0
    return out


def entries_of(adj):
    m = adj.to_scipy().tocoo()
    return {(int(r), int(c)): float(v) for r, c, v in zip(m.row, m.col, m.data)}


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
    assert adj.symmetric == (norm == "sym")
    # Columns sorted within each row.
    rowptr, col = adj.rowptr.numpy(), adj.col.numpy()
    for r in range(adj.n_nodes):
        assert np.all(np.diff(col[rowptr[r]:rowptr[r + 1]]) > 0)


def test_isolated_nodes_have_no_entries_and_no_nan():
    adj = build_adjacency(np.array([0, 0]), np.array([1, 1]), 3, 4)
    assert adj.nnz == 2 and torch.isfinite(adj.val).all()
    assert adj.val.tolist() == [1.0, 1.0]
    counts = torch.diff(adj.rowptr)
    assert counts.tolist() == [1, 0, 0, 0, 1, 0, 0]


@pytest.mark.parametrize("self_loops", [False, True])
def test_row_normalised_transpose_permutation(self_loops):
    rng = np.random.default_rng(5)
    user, item = random_interactions(rng, 17, 13, 60)
    adj = build_adjacency(user, item, 17, 13, norm="row", self_loops=self_loops)
    rowptr_t, col_t, perm_t = adj.transpose
    dense_t = {}
    for r in range(adj.n_nodes):
        for k in range(rowptr_t[r], rowptr_t[r + 1]):
            dense_t[(int(col_t[k]), r)] = float(adj.val[perm_t[k]])
    assert dense_t == pytest.approx(entries_of(adj))


def test_dropout_masks_values_and_keeps_structure():
    rng = np.random.default_rng(2)
    user, item = random_interactions(rng, 40, 50, 400)
    adj = build_adjacency(user, item, 40, 50)
    g = torch.Generator().manual_seed(0)
    dropped = adj.dropout(0.25, generator=g)
    assert dropped.col is adj.col and dropped.rowptr is adj.rowptr
    kept = dropped.val != 0
    assert 0.6 < kept.float().mean() < 0.9
    torch.testing.assert_close(dropped.val[kept], adj.val[kept] / 0.75)
    with pytest.raises(ValueError, match="p must be"):
        adj.dropout(1.0)


def test_bad_ids_are_rejected():
    with pytest.raises(ValueError, match="item ids"):
        build_adjacency(np.array([0]), np.array([5]), 2, 5)
    with pytest.raises(ValueError, match="norm"):
        build_adjacency(np.array([0]), np.array([1]), 2, 5, norm="left")
