r"""The normalised interaction matrix, its filters and its truncated SVD (docs/DESIGN.md §8).

With ``R ∈ {0,1}^{n_u×n_i}`` the training interactions and ``d_u``, ``d_i`` the user and item
degrees (a node of degree 0 gets weight 0, never inf):

.. math::

    \tilde R = D_U^{-1/2} R\, D_I^{-1/2},\qquad \tilde P = \tilde R^\top \tilde R

``P̃`` (the graph filters' "linear filter") is ``n_i × n_i`` and about 6 % dense on Gowalla
(~110 M entries): it is never formed. Signals are held transposed, a block of ``B`` users as
``x`` of shape ``(n_i, B)``, and ``P̃ x = R̃ᵀ (R̃ x)`` is two sparse products
(:func:`gnn.kernels.csr_spmm`), ``2 · nnz · B`` multiply-adds. A block of users' binary rows
takes a cheaper first product (:meth:`SpectralGraph.linear_rows`): ``R̃ R[users]ᵀ`` is sparse.

The CPU SpMM runs on one core; :class:`_SplitCSR` cuts a matrix's rows into one range per
torch thread (equal non-zeros) and multiplies the ranges concurrently.

:func:`randomized_svd` finds ``R̃``'s top right singular vectors by subspace iteration on ``P̃``
(Halko, Martinsson & Tropp, SIAM Review 2011, algorithms 4.4 and 5.1) on that SpMM;
:func:`scipy_svd` asks ``scipy.sparse.linalg.svds`` (ARPACK) instead. Memory:
``O(nnz + (n_u + n_i) · l)`` with ``l = k + oversample``.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Tuple

import numpy as np
import scipy.sparse as sp
import torch

from gnn.data import UserItemCSR
from gnn.kernels import csr_spmm

__all__ = ["SpectralGraph", "randomized_svd", "scipy_svd", "SVD_METHODS", "inverse_sqrt"]

SVD_METHODS = ("randomized", "scipy")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def inverse_sqrt(degree: np.ndarray) -> np.ndarray:
    """``d^{-1/2}``, and 0 where ``d = 0`` (an isolated node contributes nothing)."""
    out = np.zeros(degree.shape, dtype=np.float64)
    np.divide(1.0, np.sqrt(degree), out=out, where=degree > 0)
    return out


class _SplitCSR:
    """A CSR matrix as ``parts`` row ranges of about equal non-zeros, multiplied concurrently.

    ``csr_spmm`` on the CPU (an ``embedding_bag`` gather-reduce) uses one core; two ranges on
    two threads use two (the op releases the GIL). The ranges' results are stacked in order.
    """

    _pool = None  # one small thread pool for the process, made on first use

    def __init__(self, matrix: sp.csr_matrix, dtype: torch.dtype, parts: int):
        n_rows, nnz = matrix.shape[0], matrix.nnz
        indptr = np.asarray(matrix.indptr, dtype=np.int64)
        col_dtype = np.int32 if matrix.shape[1] < 2**31 else np.int64
        cuts = np.searchsorted(indptr, np.linspace(0, nnz, max(parts, 1) + 1)[1:-1])
        bounds = [0, *sorted({int(c) for c in cuts if 0 < c < n_rows}), n_rows]
        self.parts = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            a, b = indptr[lo], indptr[hi]
            self.parts.append((torch.from_numpy(indptr[lo:hi + 1] - a),
                               torch.from_numpy(matrix.indices[a:b].astype(col_dtype)),
                               torch.from_numpy(matrix.data[a:b]).to(dtype)))
        self.shape = matrix.shape

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        if len(self.parts) == 1:
            return csr_spmm(*self.parts[0], x)
        if _SplitCSR._pool is None:
            _SplitCSR._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="gnn-spmm")
        futures = [_SplitCSR._pool.submit(csr_spmm, *part, x) for part in self.parts]
        return torch.cat([f.result() for f in futures])


class SpectralGraph:
    """``R``, ``R̃`` and ``R̃ᵀ`` of one set of training interactions, and products with them.

    Args:
        train: the training interactions (:class:`gnn.data.UserItemCSR`).
        dtype: ``"float32"`` (default) or ``"float64"`` (exact checks).
        threads: row ranges multiplied concurrently (default: ``torch.get_num_threads()``).

    Attributes: ``n_users``, ``n_items``; ``user_degree``, ``item_degree`` (float64);
    ``item_inv_sqrt`` ``(d_i^{-1/2})`` and ``item_sqrt`` ``(d_i^{1/2})``, 0 for isolated items;
    ``R`` (binary) and ``Rn`` (``R̃``) as scipy CSR in ``dtype``.
    """

    def __init__(self, train: UserItemCSR, dtype: str = "float32", threads: int = None):
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
        self._RnT = self.Rn.T.tocsr()  # (n_items, n_users): for R[users] R̃ᵀ
        parts = torch.get_num_threads() if threads is None else int(threads)
        self._users_side = _SplitCSR(self.Rn, self.torch_dtype, parts)    # R̃ x
        self._items_side = _SplitCSR(self._RnT, self.torch_dtype, parts)  # R̃ᵀ y

    @property
    def nnz(self) -> int:
        return self.R.nnz

    def to_users(self, x: torch.Tensor) -> torch.Tensor:
        """``R̃ x``: ``(n_items, B) -> (n_users, B)``."""
        return self._users_side @ x

    def to_items(self, y: torch.Tensor) -> torch.Tensor:
        """``R̃ᵀ y``: ``(n_users, B) -> (n_items, B)``."""
        return self._items_side @ y

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        """The linear filter on a block of signals: ``P̃ x = R̃ᵀ (R̃ x)``, ``(n_items, B)``."""
        return self.to_items(self.to_users(x))

    def rows(self, users: np.ndarray) -> sp.csr_matrix:
        """The binary interaction rows ``R[users]`` (scipy CSR, ``(B, n_items)``)."""
        return self.R[users]

    def linear_rows(self, users: np.ndarray) -> torch.Tensor:
        """``P̃ R[users]ᵀ`` (the users' rows through the linear filter), ``(n_items, B)``.

        The first product ``R̃ R[users]ᵀ`` has the sparsity of the users' two-hop neighbourhood
        and is taken sparse (scipy); only the second one runs on dense columns.
        """
        hop = (self.rows(users) @ self._RnT).tocoo()  # R[users] R̃ᵀ: (B, n_users), sparse
        dense = np.zeros((self.n_users, hop.shape[0]), dtype=hop.dtype)
        dense[hop.col, hop.row] = hop.data
        return self.to_items(torch.from_numpy(dense))


def _orthonormalize(z: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis of ``z``'s columns: Cholesky QR (a Gram GEMM, an ``l × l``
    Cholesky in float64 and a triangular solve: ~4x faster than Householder QR on tall blocks),
    Householder QR when the Gram matrix is numerically singular."""
    gram = (z.T @ z).double()
    chol, info = torch.linalg.cholesky_ex(gram)
    if int(info) == 0:
        rcond = chol.diagonal().min() / chol.diagonal().max()
        if float(rcond) > 1e-4 if z.dtype == torch.float32 else float(rcond) > 1e-7:
            return torch.linalg.solve_triangular(chol.T.to(z.dtype), z, upper=True, left=False)
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
    (seeded), ``Z_{j+1} = orth(P̃ Z_j)`` for ``power_iters`` steps, then Rayleigh–Ritz:
    ``Y = R̃ Z``, ``YᵀY = W Σ² Wᵀ`` (eigh, float64), ``V = Z W``. The error in ``σ_j`` shrinks
    like ``(σ_{l+1}/σ_j)^{2·power_iters+1}``. Cost: ``power_iters + 1`` pairs of SpMMs with
    ``l`` columns and as many ``l``-column orthonormalisations.
    """
    k = _check_rank(graph, k, "randomized_svd")
    for name, value, low in (("oversample", oversample, 0), ("power_iters", power_iters, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"randomized_svd(): {name} must be an int >= {low}, but got {value!r}")
    width = min(k + int(oversample), graph.n_items, graph.n_users)
    gen = torch.Generator().manual_seed(int(seed))
    z = _orthonormalize(torch.randn(graph.n_items, width, generator=gen, dtype=graph.torch_dtype))
    for _ in range(int(power_iters)):
        z = _orthonormalize(graph.linear(z))
    y = graph.to_users(z)
    values, vectors = torch.linalg.eigh((y.T @ y).double())  # ascending
    top = torch.argsort(values, descending=True)[:k]
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
