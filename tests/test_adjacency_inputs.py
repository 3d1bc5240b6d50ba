"""gnn.adjacency's user formats and edge weights (issue 17, problems 3 and 7): the square joint
matrix of LightGCN code, undirected node-id edge lists, edge weights (repeats add up, every
normalisation against a float64 dict reference), and learnable weights whose gradient flows
through the normalisation and csr_spmm (against dense float64 autograd)."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gnn import Adjacency, build_adjacency
from gnn.kernels import csr_spmm
from test_adjacency import assert_same_adjacency, dense, entries_of, random_interactions

N_USERS, N_ITEMS = 13, 17


def weighted_reference(pairs, n_users, n_items, norm, self_loops):
    """{(row, col): value} from {(u, i): weight}, plain Python in float64."""
    n = n_users + n_items
    edges = {}
    for (u, i), w in pairs.items():
        edges[(u, n_users + i)] = w
        edges[(n_users + i, u)] = w
    deg = np.zeros(n)
    for (r, _c), w in edges.items():
        deg[r] += w
    if norm == "row" and self_loops:
        deg += 1.0
    out = {}
    for (r, c), w in edges.items():
        if norm == "sym":
            out[(r, c)] = w / math.sqrt(deg[r] * deg[c]) if deg[r] * deg[c] > 0 else 0.0
        else:
            out[(r, c)] = w / deg[r] if deg[r] > 0 else 0.0
    if self_loops:
        for v in range(n):
            out[(v, v)] = 1.0 if norm == "sym" else 1.0 / deg[v]
    return out


def weighted_graph(seed=0):
    user, item = random_interactions(np.random.default_rng(seed), N_USERS, N_ITEMS, 70)
    weight = np.random.default_rng(seed + 1).uniform(0.0, 2.0, user.size)
    weight[::9] = 0.0  # zero weights are allowed
    pairs = {}
    for u, i, w in zip(user.tolist(), item.tolist(), weight.tolist()):
        pairs[(u, i)] = pairs.get((u, i), 0.0) + w  # repeats add up
    return user, item, weight, pairs


@pytest.mark.parametrize("norm,self_loops", [("sym", False), ("sym", True), ("row", False),
                                             ("row", True)])
def test_edge_weights_enter_every_normalisation(norm, self_loops):
    user, item, weight, pairs = weighted_graph()
    adj = Adjacency.from_edge_index(np.stack([user, item]), N_USERS, N_ITEMS,
                                    edge_weight=torch.tensor(weight), norm=norm,
                                    self_loops=self_loops)
    ref = weighted_reference(pairs, N_USERS, N_ITEMS, norm, self_loops)
    got = entries_of(adj)
    assert got.keys() == ref.keys()
    for key, value in ref.items():
        assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-7), key
    assert adj.val.dtype == torch.float32 and adj.symmetric == (norm == "sym")


def test_unit_weights_give_the_unweighted_adjacency():
    user, item = random_interactions(np.random.default_rng(5), N_USERS, N_ITEMS, 60)
    for norm in ("sym", "row"):
        plain = build_adjacency(user, item, N_USERS, N_ITEMS, norm=norm)
        ones = Adjacency.from_edge_index(np.stack([user, item]), N_USERS, N_ITEMS, norm=norm,
                                         edge_weight=torch.ones(user.size))
        assert torch.equal(ones.col, plain.col)
        # repeated pairs count twice with weights, once without: compare on unique pairs
        key = np.unique(user * N_ITEMS + item)
        unique = Adjacency.from_edge_index(np.stack([key // N_ITEMS, key % N_ITEMS]), N_USERS,
                                           N_ITEMS, norm=norm, edge_weight=torch.ones(key.size))
        assert_same_adjacency(unique, plain)


@pytest.mark.parametrize("bad", [[-1.0], [float("nan")], [float("inf")]])
def test_bad_edge_weights_are_refused(bad):
    with pytest.raises(ValueError, match="edge_weight must be finite and >= 0"):
        Adjacency.from_edge_index([[0], [1]], 2, 2, edge_weight=bad)
    with pytest.raises(ValueError, match=r"edge_weight must have shape \(1,\)"):
        Adjacency.from_edge_index([[0], [1]], 2, 2, edge_weight=[1.0, 2.0])


@pytest.mark.parametrize("norm", ["sym", "row"])
def test_learnable_weights_train_through_the_normalisation_and_spmm(norm):
    """d loss / d w through Â(w) and csr_spmm, against dense float64 autograd of the same math."""
    user, item, weight, _ = weighted_graph(3)
    w = torch.tensor(weight + 0.1, requires_grad=True)  # float64: gradcheck precision
    adj = Adjacency.from_edge_index(np.stack([user, item]), N_USERS, N_ITEMS, edge_weight=w,
                                    norm=norm)
    assert adj.val.requires_grad and adj.val.dtype == torch.float64
    x = torch.randn(N_USERS + N_ITEMS, 3, dtype=torch.float64)
    up = torch.randn(N_USERS + N_ITEMS, 3, dtype=torch.float64)
    (csr_spmm(adj.rowptr, adj.col, adj.val, x, symmetric=adj.symmetric,
              transpose=adj.transpose) * up).sum().backward()
    # the same math, dense
    w2 = torch.tensor(weight + 0.1, requires_grad=True)
    n = N_USERS + N_ITEMS
    a = torch.zeros(n, n, dtype=torch.float64)
    a = a.index_put((torch.tensor(user), torch.tensor(item) + N_USERS), w2, accumulate=True)
    a = a + a.T
    deg = a.sum(1)
    safe = torch.where(deg > 0, deg, torch.ones_like(deg))
    if norm == "sym":
        s = torch.where(deg > 0, safe.rsqrt(), torch.zeros_like(deg))
        a_hat = s[:, None] * a * s[None, :]
    else:
        a_hat = torch.where(deg > 0, 1.0 / safe, torch.zeros_like(deg))[:, None] * a
    ((a_hat @ x) * up).sum().backward()
    torch.testing.assert_close(w.grad, w2.grad)
    torch.testing.assert_close(dense(adj.rowptr, adj.col, adj.val, n), a_hat.detach())


def test_reweighted_is_build_with_those_weights():
    user, item, weight, _ = weighted_graph(4)
    base = build_adjacency(user, item, N_USERS, N_ITEMS, norm="row", self_loops=True)
    w = torch.rand(base.interactions.nnz, dtype=torch.float64)
    again = base.reweighted(w)
    fresh = build_adjacency(base.interactions, norm="row", self_loops=True, weights=w)
    torch.testing.assert_close(again.val, fresh.val, rtol=0, atol=0)
    assert again.transpose is not None and not again.symmetric
    with pytest.raises(ValueError, match=r"edge_weight must be a tensor of shape"):
        base.reweighted(torch.ones(3))
    with pytest.raises(ValueError, match="can be reweighted"):
        base.with_values(base.val * 2).reweighted(w)


# -- scipy -----------------------------------------------------------------------------------------
def joint(r: sp.spmatrix) -> sp.csr_matrix:
    return sp.bmat([[None, r], [r.T, None]], format="csr")


def test_square_joint_matrix_with_num_users_is_understood():
    user, item = random_interactions(np.random.default_rng(6), N_USERS, N_ITEMS, 60)
    r = sp.csr_matrix((np.ones(user.size), (user, item)), shape=(N_USERS, N_ITEMS))
    want = build_adjacency(user, item, N_USERS, N_ITEMS)
    assert_same_adjacency(Adjacency.from_scipy(joint(r), num_users=N_USERS), want)


def test_square_matrix_without_num_users_is_refused_with_what_to_pass():
    # Before: a (N x N) joint matrix silently became a graph of N users and N items.
    r = sp.random(4, 6, density=0.5, format="csr", random_state=0)
    with pytest.raises(ValueError, match=r"square \(10 x 10\).*pass num_users=<the number of "
                                         r"users>.*pass num_users=10"):
        Adjacency.from_scipy(joint(r))


def test_square_interaction_matrix_with_num_users_equal_to_its_rows():
    r = sp.random(5, 5, density=0.4, format="csr", random_state=1)
    adj = Adjacency.from_scipy(r, num_users=5)
    assert (adj.n_users, adj.n_items) == (5, 5) and adj.interactions.nnz == r.nnz


def test_square_matrix_that_is_not_bipartite_or_not_symmetric_is_refused():
    r = sp.random(4, 6, density=0.5, format="csr", random_state=2)
    bad = joint(r).tolil()
    bad[0, 1] = 1.0  # a user-user entry
    with pytest.raises(ValueError, match="user-user or item-item entries"):
        Adjacency.from_scipy(bad.tocsr(), num_users=4)
    lopsided = sp.bmat([[None, r], [sp.random(6, 4, density=0.5, random_state=3), None]],
                       format="csr")
    with pytest.raises(ValueError, match="not symmetric"):
        Adjacency.from_scipy(lopsided, num_users=4)


def test_scipy_entries_as_weights():
    user, item, weight, pairs = weighted_graph(7)
    r = sp.coo_matrix((weight, (user, item)), shape=(N_USERS, N_ITEMS))  # repeats add up
    adj = Adjacency.from_scipy(r, weighted=True, norm="row")
    ref = weighted_reference({k: v for k, v in pairs.items() if v != 0}, N_USERS, N_ITEMS,
                             "row", False)
    got = entries_of(adj)
    assert got.keys() == ref.keys()
    for key, value in ref.items():
        assert got[key] == pytest.approx(value, rel=1e-6), key


# -- undirected node-id edge lists -----------------------------------------------------------------
def test_undirected_node_id_edge_list_is_folded_into_pairs():
    # Before: "user ids must lie in [0, 13)" with no hint about the item offset.
    user, item, weight, pairs = weighted_graph(8)
    forward = np.stack([user, item + N_USERS])
    both = np.concatenate([forward, forward[::-1]], axis=1)
    weights = torch.tensor(np.concatenate([weight, weight]))
    got = Adjacency.from_edge_index(both, N_USERS, N_ITEMS, edge_weight=weights)
    want = Adjacency.from_edge_index(np.stack([user, item]), N_USERS, N_ITEMS,
                                     edge_weight=torch.tensor(weight))
    assert_same_adjacency(got, want)
    only_back = Adjacency.from_edge_index(forward[::-1].copy(), N_USERS, N_ITEMS,
                                          edge_weight=torch.tensor(weight))
    assert_same_adjacency(only_back, want)


def test_node_id_edge_between_two_users_is_refused():
    edges = np.array([[0, 1, 2], [N_USERS + N_ITEMS - 1, 3, N_USERS]])  # 29: a node id
    with pytest.raises(ValueError, match=r"items offset by num_users=13.*edge 1 \(1, 3\) joins "
                                         r"two users"):
        Adjacency.from_edge_index(edges, N_USERS, N_ITEMS)
