r"""The bipartite structure of an adjacency and its normalised values: one definition of each.

With the interactions ``R`` (one entry per (user, item) pair, weight ``w``; 1 unless given) and
``A = [[0, R], [Rᵀ, 0]]`` over users then items, ``d_v = Σ_w A_vw`` (weighted degrees)::

    norm="sym":  Â = D^{-1/2} A D^{-1/2}   (+ I with self_loops)
    norm="row":  Â = D^{-1} A              (self_loops: D^{-1}(A + I), D the degrees of A + I)

A node of degree 0 gets weight 0, never inf or NaN. The values are computed in torch from the
weights, differentiably: learnable edge weights train through :func:`normalised_values` and
:func:`gnn.kernels.csr_spmm` (differentiable in its values).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gnn.data import UserItemCSR

NORMS = ("sym", "row")


@dataclass(frozen=True)
class Structure:
    """Where everything lives in the joint CSR: ``rowptr`` (int64), ``col`` (int32), sorted
    within each row; ``forward[k]`` / ``backward[k]``: the entries (u, n_users + i) and
    (n_users + i, u) of interaction k (in the interactions' CSR order); ``diagonal``: the
    entries (v, v) when there are self-loops (else empty); ``users``, ``items``: each
    interaction's ids (int64)."""

    rowptr: torch.Tensor
    col: torch.Tensor
    forward: torch.Tensor
    backward: torch.Tensor
    diagonal: torch.Tensor
    users: torch.Tensor
    items: torch.Tensor


def structure(interactions: UserItemCSR, self_loops: bool) -> Structure:
    """The joint CSR's pattern (vectorised numpy, O(N + nnz))."""
    n_users, n_items = interactions.shape
    n, loop = n_users + n_items, int(bool(self_loops))
    user, item = interactions.users(), interactions.indices.copy()  # writable: torch shares it
    nnz = user.size
    counts = np.concatenate([np.diff(interactions.indptr),
                             np.bincount(item, minlength=n_items)]) + loop
    rowptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=rowptr[1:])
    k = np.arange(nnz, dtype=np.int64)
    # user rows: the self-loop (column u) first, then the items in order
    forward = rowptr[user] + loop + (k - interactions.indptr[user])
    # item rows: the users in ascending order (a stable sort by item keeps users ascending),
    # then the self-loop (column n_users + i, after every user)
    by_item = np.argsort(item, kind="stable")
    item_start = np.concatenate([[0], np.cumsum(np.bincount(item, minlength=n_items))])
    rank = np.arange(nnz, dtype=np.int64) - item_start[item[by_item]]
    backward = np.empty(nnz, dtype=np.int64)
    backward[by_item] = rowptr[n_users + item[by_item]] + rank
    col = np.empty(int(rowptr[-1]), dtype=np.int32)
    col[forward] = n_users + item
    col[backward] = user
    if loop:
        diagonal = np.concatenate([rowptr[:n_users], rowptr[n_users + 1:] - 1])
        col[diagonal] = np.arange(n, dtype=np.int32)
    else:
        diagonal = np.zeros(0, dtype=np.int64)
    t = torch.from_numpy
    return Structure(t(rowptr), t(col), t(forward), t(backward), t(diagonal), t(user), t(item))


def _safe_power(deg: torch.Tensor, exponent: float) -> torch.Tensor:
    """``deg ** exponent`` with 0 where ``deg == 0`` (no inf, and no NaN in the gradient)."""
    positive = deg > 0
    return torch.where(positive, torch.where(positive, deg, 1.0).pow(exponent), 0.0)


def normalised_values(s: Structure, n_users: int, n_items: int, weights: torch.Tensor,
                      norm: str, self_loops: bool) -> torch.Tensor:
    """``Â``'s values in the pattern ``s`` (module docstring), in the weights' dtype and
    differentiable in them; ``weights``: one per interaction, >= 0."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, but got {norm!r}")
    w = weights
    deg_u = w.new_zeros(n_users).index_add(0, s.users.to(w.device), w)
    deg_i = w.new_zeros(n_items).index_add(0, s.items.to(w.device), w)
    users, items = s.users.to(w.device), s.items.to(w.device)
    val = w.new_zeros(s.col.shape[0])
    if norm == "sym":
        half_u, half_i = _safe_power(deg_u, -0.5), _safe_power(deg_i, -0.5)
        v = w * half_u[users] * half_i[items]
        val = val.index_put((s.forward.to(w.device),), v).index_put((s.backward.to(w.device),), v)
        diag = w.new_ones(n_users + n_items)
    else:
        loop = 1.0 if self_loops else 0.0
        inv_u, inv_i = _safe_power(deg_u + loop, -1.0), _safe_power(deg_i + loop, -1.0)
        val = val.index_put((s.forward.to(w.device),), w * inv_u[users])
        val = val.index_put((s.backward.to(w.device),), w * inv_i[items])
        diag = torch.cat([inv_u, inv_i])
    if self_loops:
        val = val.index_put((s.diagonal.to(w.device),), diag)
    return val
