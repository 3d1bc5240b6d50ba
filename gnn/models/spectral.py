r"""The normalised interaction matrix, its filters and its truncated SVD (docs/DESIGN.md §8).

With ``R ∈ {0,1}^{n_u×n_i}`` the training interactions and ``d_u``, ``d_i`` the user and item
degrees (a node of degree 0 gets weight 0, never inf):

.. math::

    \tilde R = D_U^{-1/2} R\, D_I^{-1/2},\qquad \tilde P = \tilde R^\top \tilde R

``P̃`` (the graph filters' "linear filter") is ``n_i × n_i`` and about 6 % dense on Gowalla
(~110 M entries): it is never formed. Signals are held transposed, ``B`` users' signals as ``x``
of shape ``(n_i, B)``, and ``P̃ x = R̃ᵀ (R̃ x)`` is two sparse products
(:func:`gnn.kernels.csr_spmm`), ``2 · nnz · B`` multiply-adds. A block of users' binary rows
takes a cheaper first product (:meth:`SpectralGraph.linear_rows`): ``R̃ R[users]ᵀ`` is sparse.

The CPU SpMM gathers one row of ``x`` per non-zero and runs on one core. It is fastest when the
rows it gathers stay in cache, so wide blocks are cut into column panels of :data:`PANEL`
columns (10 MB of ``x`` on Gowalla; 3x less CPU time per column than 1,024-column blocks, measured
in results/graph_filters/), and :func:`run_concurrently` spreads panels over torch's threads.

:func:`randomized_svd` finds ``R̃``'s top right singular vectors by subspace iteration on ``P̃``
(Halko, Martinsson & Tropp, SIAM Review 2011, algorithms 4.4 and 5.1) on that SpMM;
:func:`scipy_svd` asks ``scipy.sparse.linalg.svds`` (ARPACK) instead. Memory:
``O(nnz + (n_u + n_i) · l)`` with ``l = k + oversample``.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import scipy.sparse as sp
import torch

from gnn.data import UserItemCSR
from gnn.kernels import csr_spmm

__all__ = ["SpectralGraph", "randomized_svd", "scipy_svd", "run_concurrently", "inverse_sqrt",
           "SVD_METHODS", "PANEL"]

SVD_METHODS = ("randomized", "scipy")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def inverse_sqrt(degree: np.ndarray) -> np.ndarray:
    """``d^{-1/2}``, and 0 where ``d = 0`` (an isolated node contributes nothing)."""
    out = np.zeros(degree.shape, dtype=np.float64)
    np.divide(1.0, np.sqrt(degree), out=out, where=degree > 0)
    return out


#: Columns per SpMM call (module docstring).
PANEL = 64

_POOLS: Dict[int, ThreadPoolExecutor] = {}  # by size: never more threads than torch's count


def run_concurrently(fn: Callable, jobs: Sequence) -> List:
    """``[fn(job) for job in jobs]`` on ``torch.get_num_threads()`` threads (the sparse products
    release the GIL); results in the order of ``jobs``."""
    threads = torch.get_num_threads()
    if threads <= 1 or len(jobs) <= 1:
        return [fn(job) for job in jobs]
    if threads not in _POOLS:
        _POOLS[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gnn-filter")
    futures = [_POOLS[threads].submit(fn, job) for job in jobs]
    return [future.result() for future in futures]


def _csr_tensors(matrix: sp.csr_matrix, dtype: torch.dtype):
    col_dtype = np.int32 if matrix.shape[1] < 2**31 else np.int64
    return (torch.from_numpy(np.asarray(matrix.indptr, dtype=np.int64)),
            torch.from_numpy(matrix.indices.astype(col_dtype)),
            torch.from_numpy(matrix.data).to(dtype))


class SpectralGraph:
    """``R``, ``R̃`` and ``R̃ᵀ`` of one set of training interactions, and products with them.

    Args:
        train: the training interactions (:class:`gnn.data.UserItemCSR`).
        dtype: ``"float32"`` (default) or ``"float64"`` (exact checks).

    Attributes: ``n_users``, ``n_items``; ``user_degree``, ``item_degree`` (float64);
    ``item_inv_sqrt`` ``(d_i^{-1/2})`` and ``item_sqrt`` ``(d_i^{1/2})``, 0 for isolated items;
    ``R`` (binary) and ``Rn`` (``R̃``) as scipy CSR in ``dtype``.

    :meth:`to_users`, :meth:`to_items`, :meth:`linear` and :meth:`linear_rows` compute one panel
    on the calling thread; :meth:`linear_wide` cuts a wide block into panels itself.
    """

    def __init__(self, train: UserItemCSR, dtype: str = "float32"):
        if not isinstance(train, UserItemCSR):
            raise TypeError(f"train must be a gnn.data.UserItemCSR (e.g. dataset.train_csr), but "
                            f"got {type(train).__name__}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, but got {dtype!r}")
        self.dtype, self.torch_dtype = dtype, DTYPES[dtype]
        self.n_users, self.n_items = train.shape
        np_dtype = np.float32 if dtype == "float32" else np.float64
        self.user_degree = train.degrees().astype(np.float64)
        self.item_degree = np.bincount(train.indices, minlength=self.n_items).astype(np.float64)
        self.item_inv_sqrt = inverse_sqrt(self.item_degree)
        self.item_sqrt = np.sqrt(self.item_degree)
        self.R = train.to_scipy(np_dtype)
        weights = inverse_sqrt(self.user_degree)[train.users()] * self.item_inv_sqrt[train.indices]
        self.Rn = sp.csr_matrix((weights.astype(np_dtype), self.R.indices, self.R.indptr),
                                shape=train.shape)
        self._RnT = self.Rn.T.tocsr()  # (n_items, n_users): also for R[users] R̃ᵀ
        self._users_side = _csr_tensors(self.Rn, self.torch_dtype)   # R̃ x
        self._items_side = _csr_tensors(self._RnT, self.torch_dtype)  # R̃ᵀ y

    def to_users(self, x: torch.Tensor) -> torch.Tensor:
        """``R̃ x``: ``(n_items, w) -> (n_users, w)``."""
        return csr_spmm(*self._users_side, x.contiguous())

    def to_items(self, y: torch.Tensor) -> torch.Tensor:
        """``R̃ᵀ y``: ``(n_users, w) -> (n_items, w)``."""
        return csr_spmm(*self._items_side, y.contiguous())

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        """The linear filter on a panel of signals: ``P̃ x = R̃ᵀ (R̃ x)``, ``(n_items, w)``."""
        return self.to_items(self.to_users(x))

    def linear_wide(self, x: torch.Tensor) -> torch.Tensor:
        """``P̃ x`` for any width: :data:`PANEL`-column panels on concurrent threads."""
        if x.shape[1] <= PANEL:
            return self.linear(x)
        cuts = range(0, x.shape[1], PANEL)
        return torch.cat(run_concurrently(lambda lo: self.linear(x[:, lo:lo + PANEL]), cuts), 1)

    def rows(self, users: np.ndarray) -> sp.csr_matrix:
        """The binary interaction rows ``R[users]`` (scipy CSR, ``(w, n_items)``)."""
        return self.R[users]

    def linear_rows(self, users: np.ndarray) -> torch.Tensor:
        """``P̃ R[users]ᵀ`` (the users' rows through the linear filter), ``(n_items, w)``.

        The first product ``R̃ R[users]ᵀ`` has the sparsity of the users' two-hop neighbourhood
        and is taken sparse (scipy); only the second one runs on dense columns.
        """
        hop = (self.rows(users) @ self._RnT).tocoo()  # R[users] R̃ᵀ: (w, n_users), sparse
        dense = np.zeros((self.n_users, hop.shape[0]), dtype=hop.dtype)
        dense[hop.col, hop.row] = hop.data
        return self.to_items(torch.from_numpy(dense))

    def add_rows(self, y: torch.Tensor, users: np.ndarray, c: float) -> None:
        """``y += c · R[users]ᵀ`` on a transposed ``(n_items, w)`` panel."""
        if c != 0.0:
            rows = self.rows(users).tocoo()
            y[torch.from_numpy(rows.col.astype(np.int64)),
              torch.from_numpy(rows.row.astype(np.int64))] += c


def _orthonormalize(z: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis of ``z``'s columns by Cholesky QR: ``zᵀz = UᵀU`` (the Cholesky
    factor in float64, ``l × l``), then ``z U⁻¹`` as one GEMM (two GEMMs in all, ~4x faster
    than Householder QR on these tall blocks); Householder QR when the Gram matrix is
    numerically singular (rank below the width).

    Dense algebra stays in torch: numpy's multi-threaded OpenBLAS, interleaved with torch's
    threads, made the SVD 3-5x slower on a 2-core machine (results/graph_filters/README.md)."""
    chol, info = torch.linalg.cholesky_ex((z.T @ z).double())
    limit = 1e-4 if z.dtype == torch.float32 else 1e-7
    if int(info) == 0 and float(chol.diagonal().min()) > limit * float(chol.diagonal().max()):
        eye = torch.eye(chol.shape[0], dtype=chol.dtype)
        return z @ torch.linalg.solve_triangular(chol.T, eye, upper=True).to(z.dtype)
    return torch.linalg.qr(z, mode="reduced").Q


def _check_rank(graph: SpectralGraph, k, name: str) -> int:
    limit = min(graph.n_users, graph.n_items)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < limit:
        raise ValueError(f"{name}(): k must be an int in [1, {limit}) (below min(n_users, n_items) "
                         f"= {limit}), but got {k!r}")
    return int(k)


def randomized_svd(graph: SpectralGraph, k: int, oversample: int = 64, power_iters: int = 4,
                   seed: int = 0) -> Tuple[np.ndarray, torch.Tensor]:
    r"""``(σ, V)``: the ``k`` largest singular values of ``R̃`` (descending, float64) and its
    right singular vectors ``V`` (``(n_items, k)``, orthonormal columns, graph dtype).

    Subspace iteration on ``P̃ = R̃ᵀR̃`` with ``l = k + oversample`` columns: ``Z₀`` Gaussian
    (seeded), ``Z ← P̃ Z`` ``power_iters`` times, orthonormalised after every second product
    (two products raise the block's condition number by ``(σ_1/σ_l)⁴`` at most, which Cholesky
    QR absorbs) and after the last; then Rayleigh–Ritz: ``Y = R̃ Z``, ``YᵀY = W Σ² Wᵀ`` (eigh,
    float64), ``V = Z W``. The error of the ``j``-th vector shrinks like
    ``(σ_{l+1}/σ_j)^{2·power_iters}``. Cost: ``power_iters + 1/2`` pairs of SpMMs with ``l``
    columns and about ``power_iters / 2`` orthonormalisations.
    """
    k = _check_rank(graph, k, "randomized_svd")
    for name, value, low in (("oversample", oversample, 0), ("power_iters", power_iters, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"randomized_svd(): {name} must be an int >= {low}, but got {value!r}")
    width = min(k + int(oversample), graph.n_items, graph.n_users)
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn(graph.n_items, width, generator=gen, dtype=graph.torch_dtype)
    for step in range(int(power_iters)):
        z = graph.linear_wide(z)
        if step % 2 == 1:
            z = _orthonormalize(z)
    if power_iters % 2 == 1 or power_iters == 0:  # the last product, or Z₀, not done yet
        z = _orthonormalize(z)
    y = torch.cat(run_concurrently(lambda lo: graph.to_users(z[:, lo:lo + PANEL]),
                                   range(0, z.shape[1], PANEL)), 1)
    values, vectors = torch.linalg.eigh((y.T @ y).double())  # ascending
    top = torch.argsort(values, descending=True, stable=True)[:k]
    sigma = values[top].clamp_min(0).sqrt().numpy()
    return sigma, z @ vectors[:, top].to(z.dtype)


def scipy_svd(graph: SpectralGraph, k: int, seed: int = 0) -> Tuple[np.ndarray, torch.Tensor]:
    """``(σ, V)`` as :func:`randomized_svd`, by ``scipy.sparse.linalg.svds`` (ARPACK, with a
    seeded start vector)."""
    from scipy.sparse.linalg import svds

    k = _check_rank(graph, k, "scipy_svd")
    v0 = np.random.default_rng(int(seed)).standard_normal(min(graph.Rn.shape))
    _, sigma, vt = svds(graph.Rn, k=k, v0=v0.astype(graph.Rn.dtype))
    order = np.argsort(-sigma)
    vectors = np.ascontiguousarray(vt[order].T)
    return sigma[order].astype(np.float64), torch.from_numpy(vectors).to(graph.torch_dtype)
