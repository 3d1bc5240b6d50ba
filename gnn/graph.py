"""The normalised user–item bipartite adjacency, held in CSR (DESIGN.md §1).

Nodes are users first, then items (item ``j`` is node ``n_users + j``), ``N = n_users + n_items``.
With the training interactions ``R`` (duplicates collapsed)::

    A = [[0, R], [Rᵀ, 0]],   d_v = Σ_w A_vw
    norm="sym":  Â = D^{-1/2} A D^{-1/2}      (Â_ui = 1 / sqrt(d_u d_i); symmetric)
                 self_loops=True gives Â + I   (NGCF paper, eq. 7)
    norm="row":  Â = D^{-1} A                  (self_loops=True: D^{-1}(A + I), with D the
                                                degrees of A + I, as NGCF's official code)

A node of degree 0 gets weight 0, never inf or NaN. Construction is O(N + nnz) (scipy's
COO→CSR is a counting sort; the row-normalised variant adds one sort of its columns for the
transpose); memory is O(N + nnz): the dense N × N matrix never exists.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch

from gnn.kernels import csr_transpose

_NORMS = ("sym", "row")


@dataclass(frozen=True)
class Adjacency:
    """A square CSR matrix over the joint user–item graph, plus what its backward pass needs.

    Attributes:
        rowptr: int64 (N + 1,) row offsets.
        col: int32 (nnz,) column of each entry, sorted within a row.
        val: float32 (nnz,) weight of each entry.
        n_users, n_items: the two node types; ``n_nodes = n_users + n_items``.
        symmetric: True when ``Âᵀ = Â``, so a backward SpMM reuses this CSR.
        transpose: for a non-symmetric matrix, ``(rowptr_t, col_t, perm_t)`` such that the
            transpose has values ``val[perm_t]`` (so masking ``val`` also masks the transpose).
    """

    rowptr: torch.Tensor
    col: torch.Tensor
    val: torch.Tensor
    n_users: int
    n_items: int
    symmetric: bool
    transpose: Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None

    @property
    def n_nodes(self) -> int:
        return self.n_users + self.n_items

    @property
    def nnz(self) -> int:
        return int(self.col.numel())

    @property
    def device(self) -> torch.device:
        return self.val.device

    @property
    def nbytes(self) -> int:
        """Bytes held by the CSR arrays (and the transpose's, when kept)."""
        tensors = [self.rowptr, self.col, self.val] + list(self.transpose or ())
        return sum(t.numel() * t.element_size() for t in tensors)

    def to(self, device) -> "Adjacency":
        """A copy on ``device`` (the same object when it is already there)."""
        device = torch.device(device)
        if self.val.device == device:
            return self
        move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
        transpose = tuple(move(t) for t in self.transpose) if self.transpose else None
        return replace(self, rowptr=move(self.rowptr), col=move(self.col), val=move(self.val),
                       transpose=transpose)

    def with_values(self, val: torch.Tensor) -> "Adjacency":
        """The same sparsity pattern with new values (used by edge dropout)."""
        if val.shape != self.val.shape:
            raise ValueError(f"Adjacency.with_values(): expected {tuple(self.val.shape)} values, "
                             f"but got {tuple(val.shape)}")
        return replace(self, val=val)

    def dropout(self, p: float, generator: Optional[torch.Generator] = None) -> "Adjacency":
        """Drop each entry with probability ``p`` and rescale the kept ones by ``1/(1-p)``.

        This is NGCF's "node dropout" as its official code does it (entries of Â, not nodes),
        done by masking ``val``; the CSR structure is untouched.
        """
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Adjacency.dropout(): p must be in [0, 1), but got {p}")
        if p == 0.0:
            return self
        keep = torch.rand(self.val.shape, device=self.val.device, generator=generator) >= p
        return self.with_values(self.val * keep / (1.0 - p))

    def to_scipy(self) -> sp.csr_matrix:
        """The matrix as scipy CSR (float64), for tests and baselines."""
        return sp.csr_matrix((self.val.double().cpu().numpy(), self.col.cpu().numpy(),
                              self.rowptr.cpu().numpy()), shape=(self.n_nodes, self.n_nodes))

    def __repr__(self) -> str:
        kind = "symmetric" if self.symmetric else "non-symmetric"
        return (f"Adjacency(n_users={self.n_users}, n_items={self.n_items}, nnz={self.nnz}, "
                f"{kind}, device={self.device}, {self.nbytes / 2**20:.2f} MiB)")


def interaction_matrix(user, item, n_users: int, n_items: int) -> sp.csr_matrix:
    """``R`` as scipy CSR with duplicates collapsed to 1 (float64 values)."""
    user = np.asarray(user, dtype=np.int64)
    item = np.asarray(item, dtype=np.int64)
    if user.shape != item.shape or user.ndim != 1:
        raise ValueError(f"interaction_matrix(): user and item must be 1-D of equal length, "
                         f"but got shapes {user.shape} and {item.shape}")
    for name, ids, n in (("user", user, n_users), ("item", item, n_items)):
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            raise ValueError(f"interaction_matrix(): {name} ids must lie in [0, {n}), "
                             f"but got range [{ids.min()}, {ids.max()}]")
    r = sp.csr_matrix((np.ones(user.size), (user, item)), shape=(n_users, n_items))
    r.sum_duplicates()
    r.data[:] = 1.0
    return r


def build_adjacency(user, item, n_users: int, n_items: int, *, norm: str = "sym",
                    self_loops: bool = False) -> Adjacency:
    """Build the normalised bipartite adjacency from training pairs (see the module docstring).

    Args:
        user, item: equal-length integer arrays of training interactions (0-based ids).
        n_users, n_items: sizes of the two id spaces (ids may be absent: isolated nodes).
        norm: ``"sym"`` (default, ``D^{-1/2} A D^{-1/2}``) or ``"row"`` (``D^{-1} A``).
        self_loops: add the identity (``Â + I`` for "sym", ``D^{-1}(A + I)`` for "row").
    """
    if norm not in _NORMS:
        raise ValueError(f"build_adjacency(): norm must be one of {_NORMS}, but got {norm!r}")
    r = interaction_matrix(user, item, n_users, n_items)
    a = sp.bmat([[None, r], [r.T, None]], format="csr",
                dtype=np.float64) if r.nnz else sp.csr_matrix((n_users + n_items,) * 2)
    a = a.tocsr()
    n = n_users + n_items
    identity = sp.identity(n, format="csr")
    if norm == "sym":
        deg = np.asarray(a.sum(axis=1)).ravel()
        inv_sqrt = np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0)
        scale = sp.diags(inv_sqrt)
        a_hat = scale @ a @ scale
        if self_loops:
            a_hat = a_hat + identity
    else:
        if self_loops:
            a = a + identity
        deg = np.asarray(a.sum(axis=1)).ravel()
        inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
        a_hat = sp.diags(inv) @ a
    a_hat = sp.csr_matrix(a_hat)
    a_hat.sort_indices()
    rowptr = torch.from_numpy(a_hat.indptr.astype(np.int64))
    col = torch.from_numpy(a_hat.indices.astype(np.int32))
    val = torch.from_numpy(a_hat.data.astype(np.float32))
    symmetric = norm == "sym"
    # A non-symmetric Â keeps its transpose for the backward SpMM, as a permutation of values.
    transpose = None if symmetric else csr_transpose(rowptr, col, a_hat.shape[1])
    return Adjacency(rowptr, col, val, n_users, n_items, symmetric, transpose)
