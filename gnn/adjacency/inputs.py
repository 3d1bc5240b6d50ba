"""The user formats an adjacency is built from, read into interactions and their weights.

* ``edge_index``: a ``(2, E)`` integer array of (user, item) edges, 0-based on both sides; or
  the homogeneous form of graph libraries, items offset by ``num_users`` with each edge possibly
  in both directions (recognised, and folded into (user, item) pairs).
* scipy: an ``(n_users, n_items)`` interaction matrix ``R``, or the square joint matrix
  ``[[0, R], [Rᵀ, 0]]`` that much LightGCN code keeps (given ``num_users``).

Repeated pairs are one interaction whose weight is the sum of theirs.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch

from gnn.data import UserItemCSR


def _pair_weights(user, item, interactions: UserItemCSR, weight) -> Optional[torch.Tensor]:
    """One weight per interaction (CSR order): the sum of its edges' weights (differentiable)."""
    if weight is None:
        return None
    key = interactions.users() * interactions.n_items + interactions.indices
    where = np.searchsorted(key, np.asarray(user, np.int64) * interactions.n_items
                            + np.asarray(item, np.int64))
    index = torch.from_numpy(where).to(weight.device)
    return weight.new_zeros(interactions.nnz).index_add(0, index, weight)


def _check_weight(fn: str, weight, n_edges: int) -> Optional[torch.Tensor]:
    if weight is None:
        return None
    if not isinstance(weight, torch.Tensor):
        weight = torch.as_tensor(np.asarray(weight, dtype=np.float64))
    if weight.dim() != 1 or weight.shape[0] != n_edges:
        raise ValueError(f"{fn}: edge_weight must have shape ({n_edges},), one per edge, but got "
                         f"{tuple(weight.shape)}")
    if not weight.is_floating_point():
        raise TypeError(f"{fn}: edge_weight must be floating point, but got {weight.dtype}")
    with torch.no_grad():
        if weight.numel() and not bool(torch.isfinite(weight).all() & (weight >= 0).all()):
            raise ValueError(f"{fn}: edge_weight must be finite and >= 0 (a negative weight "
                             f"makes a degree negative), but got values in "
                             f"[{float(weight.min())}, {float(weight.max())}]")
    return weight


def from_edge_index(edge_index, num_users: int, num_items: int,
                    edge_weight=None) -> Tuple[UserItemCSR, Optional[torch.Tensor]]:
    """(interactions, one weight per interaction or None) of an edge list (module docstring)."""
    fn = "Adjacency.from_edge_index()"
    if not isinstance(edge_index, torch.Tensor):
        edge_index = torch.as_tensor(np.asarray(edge_index))
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"{fn}: edge_index must have shape (2, E), but got "
                         f"{tuple(edge_index.shape)}")
    if edge_index.is_floating_point() or edge_index.dtype == torch.bool:
        raise TypeError(f"{fn}: edge_index must hold integer ids, but got dtype {edge_index.dtype}")
    weight = _check_weight(fn, edge_weight, edge_index.shape[1])
    src, dst = (t.cpu().numpy().astype(np.int64) for t in edge_index)
    n = num_users + num_items
    if src.size and (int(src.min()) < 0 or int(dst.min()) < 0):
        raise ValueError(f"{fn}: ids must be >= 0, but got {min(int(src.min()), int(dst.min()))}")
    # Node ids (items offset by num_users) when the ids cannot be 0-based (user, item) pairs:
    # a "user" id beyond the users or an "item" id beyond the items, every id below N.
    homogeneous = bool(src.size) and (int(src.max()) >= num_users or int(dst.max()) >= num_items
                                      ) and max(int(src.max()), int(dst.max())) < n
    if homogeneous:  # node ids: users [0, num_users), items offset by num_users
        user_side = (src < num_users) != (dst < num_users)
        if not user_side.all():
            bad = int(np.flatnonzero(~user_side)[0])
            raise ValueError(
                f"{fn}: edge_index looks like node ids with items offset by num_users="
                f"{num_users} (ids up to {max(int(src.max()), int(dst.max()))}), but edge {bad} "
                f"({src[bad]}, {dst[bad]}) joins two {'users' if src[bad] < num_users else 'items'};"
                f" pass (user, item - num_users) pairs, one per interaction")
        forward = src < num_users
        user = np.where(forward, src, dst)
        item = np.where(forward, dst, src) - num_users
    else:
        user, item = src, dst
        if item.size and int(item.max()) >= num_items:
            raise ValueError(f"{fn}: item ids (edge_index[1]) must lie in [0, num_items="
                             f"{num_items}), but got up to {int(item.max())}, beyond num_users + "
                             f"num_items = {n} too")
    interactions = UserItemCSR.from_pairs(user, item, num_users, num_items)
    if homogeneous and weight is not None:
        # An undirected list holds an edge in both directions: a pair's weight is that of its
        # user -> item copies, or of its item -> user copies when it has none.
        fwd = torch.from_numpy(forward).to(weight.device)
        w_fwd = _pair_weights(user[forward], item[forward], interactions, weight[fwd])
        w_bwd = _pair_weights(user[~forward], item[~forward], interactions, weight[~fwd])
        has_fwd = _pair_weights(user[forward], item[forward], interactions,
                                torch.ones(int(forward.sum()), dtype=torch.float64)) > 0
        return interactions, torch.where(has_fwd.to(weight.device), w_fwd, w_bwd)
    return interactions, _pair_weights(user, item, interactions, weight)


def from_scipy(matrix, num_users: Optional[int], weighted: bool):
    """(interactions, weights or None) of a scipy matrix (module docstring)."""
    fn = "Adjacency.from_scipy()"
    if not sp.issparse(matrix) or matrix.ndim != 2:
        raise TypeError(f"{fn}: expected a 2-D scipy sparse matrix (n_users, n_items), but got "
                        f"{type(matrix).__name__}")
    rows, cols = matrix.shape
    coo = sp.coo_matrix(matrix)
    keep = coo.data != 0
    user, item, data = coo.row[keep], coo.col[keep], coo.data[keep]
    if rows == cols and num_users is None:
        raise ValueError(
            f"{fn}: the matrix is square ({rows} x {cols}). If it is the joint adjacency "
            f"[[0, R], [R^T, 0]] of users then items (as LightGCN code keeps it), pass "
            f"num_users=<the number of users>; if it is an interaction matrix R with as many "
            f"users as items, pass num_users={rows}")
    if num_users is not None and num_users != rows:
        if rows != cols or not 0 < num_users < rows:
            raise ValueError(f"{fn}: num_users={num_users} must be the matrix's row count "
                             f"({rows}) or, for a square joint matrix, in (0, {rows})")
        forward = (user < num_users) & (item >= num_users)
        backward = (user >= num_users) & (item < num_users)
        if not (forward | backward).all():
            raise ValueError(f"{fn}: the square matrix has user-user or item-item entries, so it "
                             f"is not [[0, R], [R^T, 0]] with num_users={num_users}")
        upper = sp.coo_matrix((data[forward], (user[forward], item[forward] - num_users)),
                              shape=(num_users, rows - num_users)).tocsr()
        lower = sp.coo_matrix((data[backward], (item[backward], user[backward] - num_users)),
                              shape=(num_users, rows - num_users)).tocsr()
        if (upper != lower).nnz:
            raise ValueError(f"{fn}: the square matrix is not symmetric: its lower block is not "
                             f"the transpose of its upper block R (num_users={num_users})")
        user, item, data = user[forward], item[forward] - num_users, data[forward]
        rows, cols = num_users, rows - num_users
    if weighted and (not np.isfinite(data).all() or (data < 0).any()):
        raise ValueError(f"{fn}: with weighted=True the entries are edge weights and must be "
                         f"finite and >= 0")
    interactions = UserItemCSR.from_pairs(user, item, rows, cols)
    weights = (_pair_weights(user, item, interactions, torch.from_numpy(data.astype(np.float64)))
               if weighted else None)
    return interactions, weights
