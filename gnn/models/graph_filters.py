r"""Training-free graph-filter recommenders: GF-CF and BSPM (docs/DESIGN.md §8).

Both pass user ``u``'s binary interaction row ``r_u`` through filters built from the
normalised matrix ``R̃ = D_U^{-1/2} R D_I^{-1/2}`` (:mod:`gnn.models.spectral`):

.. math::

    \hat s_u = r_u\, q(\tilde P) + w\; r_u \Psi\, m(\tilde P),\qquad
    \tilde P = \tilde R^\top \tilde R,\qquad \Psi = D_I^{-1/2} V_k V_k^\top D_I^{1/2}

with ``V_k`` the top-``k`` right singular vectors of ``R̃`` (``Ψ`` is the "ideal low-pass
filter") and ``q``, ``m`` polynomials:

* **GF-CF** (Shen et al., CIKM 2021): the linear filter plus ``α`` times the ideal one,
  ``q(x) = x``, ``m = 1``, ``w = α``.
* **BSPM** (Choi et al., SIGIR 2023): blurring ``ds/dt = s (P̃ − I)`` over ``[0, T_b]`` by
  ``K_b`` Euler steps, ``b(x) = (1 + τ_b (x − 1))^{K_b}``; the ideal low-pass ``r Ψ`` (the
  paper's IDL process with its one Euler step of length 1); then sharpening ``ds/dt = −s P̃``
  over ``[0, T_s]`` by ``K_s`` steps of Euler or RK4 from ``s(0) = β r Ψ + r b(P̃)``. On a linear
  ODE with constant coefficients one step of an explicit Runge–Kutta method with ``n ≤ 4``
  stages and order ``n`` multiplies the state by the Taylor polynomial
  ``φ(z) = Σ_{j≤n} z^j / j!`` of ``exp(z)`` at ``z = −τ_s P̃``, so the sharpening is exactly
  ``p(P̃) = φ(−τ_s P̃)^{K_s}``: ``q = b · p``, ``m = p``, ``w = β``. Without final sharpening
  (``final_sharpening=False``) the ideal part is added after it: ``m = 1``.

A block of ``B`` users (``(B, n_items)``, the evaluator's layout) starts as the ideal part:
``(r D^{-1/2} V_k)`` (``B × k``, sparse rows times a dense basis) times the basis
``M = m(P̃) D^{1/2} V_k`` (``n_items × k``, made once by :meth:`fit`), one GEMM. Then each
panel of :data:`~gnn.models.spectral.PANEL` users gets ``r q(P̃)`` by Horner's rule on its
transposed signal (``y ← P̃ y + c_j rᵀ``, ``(n_items, PANEL)``), whose first product starts
from the users' sparse rows (:meth:`SpectralGraph.linear_rows`) and every further one is two
SpMMs, and adds it into its rows; panels run on torch's threads. No ``n_items × n_items`` or
``n_users × n_items`` matrix is formed: memory is ``O(nnz + (n_users + n_items) · k)`` plus one
block, whose size follows ``memory_mb``.
"""
from __future__ import annotations

import math
import time
from typing import Optional, Sequence

import numpy as np
import torch
from numpy.polynomial import polynomial as poly

from gnn.data import UserItemCSR
from gnn.evaluation import Evaluator
from gnn.models.closed_form import recommend_exclusion
from gnn.kernels.ngcf_step import linear as cpu_linear
from gnn.models.spectral import (DTYPES, PANEL, SVD_METHODS, SpectralGraph, randomized_svd,
                                 run_concurrently, scipy_svd)

__all__ = ["GraphFilter", "GFCF", "BSPM", "FILTERS"]

SOLVERS = {"euler": 1, "rk4": 4}  # explicit Runge-Kutta method -> stages (= order)


def _trimmed(coefs) -> np.ndarray:
    """Polynomial coefficients without trailing zeros (no product is spent on a zero term)."""
    coefs = np.trim_zeros(np.asarray(coefs, dtype=np.float64), "b")
    return coefs if coefs.size else np.zeros(1)


def _check_int(owner: str, name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{owner}(): {name} must be an int >= {low}, but got {value!r}")
    return int(value)


def _check_number(owner: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"{owner}(): {name} must be a finite number >= 0, but got {value!r}")
    return float(value)


class GraphFilter:
    """What GF-CF and BSPM share: the SVD, the block computation, score / recommend / evaluate.

    Subclasses set ``self.weight`` (``w``) and define :meth:`linear_polynomial` (``q``) and
    :meth:`ideal_polynomial` (``m``), coefficients from the constant term up.

    Args (shared):
        k: singular vectors of the ideal low-pass filter.
        svd: ``"randomized"`` (:func:`~gnn.models.spectral.randomized_svd`, default) or
            ``"scipy"`` (ARPACK).
        oversample, power_iters: the randomized SVD's extra columns and iterations.
        seed: the randomized SVD's (and ARPACK's start vector's) seed.
        memory_mb: the working memory of one score block; sets how many users a block holds.
        block_users: users per block, overriding ``memory_mb``.
        dtype: ``"float32"`` (default) or ``"float64"``.
    """

    name = "graph-filter"
    _own_keys: tuple = ()

    def __init__(self, k: int, svd: str = "randomized", oversample: int = 64,
                 power_iters: int = 8, seed: int = 0, memory_mb: float = 512,
                 block_users: Optional[int] = None, dtype: str = "float32"):
        owner = type(self).__name__
        self.k = _check_int(owner, "k", k, 1)
        if svd not in SVD_METHODS:
            raise ValueError(f"{owner}(): svd must be one of {list(SVD_METHODS)}, but got {svd!r}")
        if dtype not in DTYPES:
            raise ValueError(f"{owner}(): dtype must be one of {sorted(DTYPES)}, but got {dtype!r}")
        self.svd, self.dtype = svd, dtype
        self.oversample = _check_int(owner, "oversample", oversample, 0)
        self.power_iters = _check_int(owner, "power_iters", power_iters, 0)
        self.seed = _check_int(owner, "seed", seed, 0)
        self.memory_mb = _check_number(owner, "memory_mb", memory_mb)
        if self.memory_mb <= 0:
            raise ValueError(f"{owner}(): memory_mb must be > 0, but got {memory_mb!r}")
        self.block_users = None if block_users is None else _check_int(owner, "block_users",
                                                                          block_users, 1)
        self.graph: Optional[SpectralGraph] = None
        self.train: Optional[UserItemCSR] = None
        self.n_users = self.n_items = None
        self.singular_values: Optional[np.ndarray] = None
        self.fit_seconds = self.svd_seconds = None

    # -- the filter ---------------------------------------------------------------------------
    def linear_polynomial(self) -> np.ndarray:
        raise NotImplementedError

    def ideal_polynomial(self) -> np.ndarray:
        raise NotImplementedError

    def fit(self, train: UserItemCSR) -> "GraphFilter":
        """Normalise the interactions, take the truncated SVD, build the ideal part's basis."""
        start = time.perf_counter()
        graph = SpectralGraph(train, self.dtype)
        self.graph, self.train = graph, train
        self.n_users, self.n_items = train.shape
        self._ideal = self.weight > 0
        if self._ideal:
            svd_start = time.perf_counter()
            if self.svd == "randomized":
                sigma, vectors = randomized_svd(graph, self.k, self.oversample, self.power_iters,
                                                self.seed)
            else:
                sigma, vectors = scipy_svd(graph, self.k, self.seed)
            self.svd_seconds = time.perf_counter() - svd_start
            self.singular_values = sigma
            # r D^{-1/2} V_k is a scipy product of the users' sparse rows with this basis
            self._left = (graph.item_inv_sqrt[:, None] * vectors.numpy()).astype(graph.R.dtype)
            scale = torch.from_numpy(graph.item_sqrt).to(graph.torch_dtype)
            right = self._polynomial_times(self.ideal_polynomial(), scale[:, None] * vectors)
            self._right = right.contiguous()  # (n_items, k): a linear layer's weight layout
        self.fit_seconds = time.perf_counter() - start
        return self

    def _polynomial_times(self, coefs: np.ndarray, x: torch.Tensor) -> torch.Tensor:
        """``c(P̃) x`` for a dense ``(n_items, w)`` block, by Horner's rule."""
        coefs = _trimmed(coefs)
        y = x * float(coefs[-1])
        for c in coefs[-2::-1]:
            y = self.graph.linear_wide(y).add_(x, alpha=float(c))
        return y

    def _linear_panel(self, users: np.ndarray) -> torch.Tensor:
        """``q(P̃) R[users]ᵀ`` for one panel of users, ``(n_items, len(users))``: Horner's rule
        ``y ← P̃ y + c_j r`` whose first product starts from the users' sparse rows."""
        graph, coefs = self.graph, _trimmed(self.linear_polynomial())
        if len(coefs) == 1:  # a constant: no product at all
            y = torch.zeros(self.n_items, len(users), dtype=graph.torch_dtype)
            graph.add_rows(y, users, float(coefs[0]))
            return y
        y = graph.linear_rows(users).mul_(float(coefs[-1]))
        graph.add_rows(y, users, float(coefs[-2]))
        for c in coefs[-3::-1]:
            y = graph.linear(y)
            graph.add_rows(y, users, float(c))
        return y

    def _block_scores(self, users: np.ndarray) -> torch.Tensor:
        """Scores of a block of users, ``(len(users), n_items)``: the ideal part by one GEMM
        into the block, then each :data:`PANEL` of users' linear part added (transposed) into
        its rows, panels on concurrent threads."""
        graph = self.graph
        if self._ideal:  # oneDNN's GEMM where torch has it: 1.3x less CPU than MKL on AMD CPUs
            coef = torch.from_numpy(np.asarray(graph.rows(users) @ self._left))
            out = cpu_linear(coef.mul_(self.weight), self._right)
        else:
            out = torch.zeros(len(users), self.n_items, dtype=graph.torch_dtype)

        def add_panel(lo):  # the transposed panel copied first: a blocked, cache-friendly copy
            out[lo:lo + PANEL].add_(self._linear_panel(users[lo:lo + PANEL]).T.contiguous())

        run_concurrently(add_panel, range(0, len(users), PANEL))
        return out

    # -- the recommender ----------------------------------------------------------------------
    @property
    def block_size(self) -> int:
        """Users per score block: ``block_users``, else what fits in ``memory_mb`` (a block
        holds ``n_items + k`` numbers per user; the panels in flight add a fixed
        ``threads · 3 · PANEL · max(n_users, n_items)``)."""
        self._check_fitted()
        if self.block_users is not None:
            return self.block_users
        per_user = self.graph.R.dtype.itemsize * (self.n_items + self.k)
        return max(1, int(self.memory_mb * 2**20 // per_user))

    def _check_fitted(self):
        if self.graph is None:
            raise RuntimeError(f"{type(self).__name__}: call fit() first")

    def _user_ids(self, users) -> np.ndarray:
        self._check_fitted()
        if isinstance(users, torch.Tensor):
            users = users.detach().cpu().numpy()
        users = np.asarray(users).reshape(-1)
        if users.size and not np.issubdtype(users.dtype, np.integer):
            raise ValueError(f"users must be integer ids, but got dtype {users.dtype}")
        users = users.astype(np.int64)
        if users.size and (users.min() < 0 or users.max() >= self.n_users):
            raise ValueError(f"users must lie in [0, {self.n_users}), but got range "
                             f"[{users.min()}, {users.max()}]")
        return users

    def score(self, users) -> np.ndarray:
        """Dense ``(len(users), n_items)`` scores (callers chunk the users; see ``block_size``)."""
        users = self._user_ids(users)
        return self._block_scores(users).numpy()

    def recommend(self, users, k: int = 10, *, exclude: Optional[UserItemCSR] = None,
                  return_scores: bool = False):
        """Top-``k`` items of each user, best first (ties: ascending item id), never an excluded
        one (default: the training items); ``(len(users), k)``, -1 where fewer items remain
        (and their scores, -inf there, with ``return_scores``)."""
        users = self._user_ids(users)
        seen = recommend_exclusion(k, exclude, self.train).to_scipy()
        out = np.full((users.size, int(k)), -1, dtype=np.int64)
        out_scores = np.full((users.size, int(k)), -np.inf, dtype=np.float64)
        for lo in range(0, users.size, self.block_size):
            block = users[lo:lo + self.block_size]
            s = self._block_scores(block)
            hidden = seen[block].tocoo()
            s[torch.from_numpy(hidden.row.astype(np.int64)),
              torch.from_numpy(hidden.col.astype(np.int64))] = float("-inf")
            vals, order = torch.sort(s, dim=1, descending=True, stable=True)
            top = min(int(k), self.n_items)
            order, vals = order[:, :top].numpy(), vals[:, :top].numpy()
            out[lo:lo + block.size, :top] = np.where(vals == -np.inf, -1, order)
            out_scores[lo:lo + block.size, :top] = vals
        return (out, out_scores) if return_scores else out

    def evaluate(self, target: UserItemCSR, exclude: Optional[Sequence[UserItemCSR]] = None,
                 ks=(20,)) -> dict:
        """Full-ranking metrics against ``target`` by the library's :class:`gnn.Evaluator`,
        one score block per evaluator chunk; ``exclude`` defaults to the training items."""
        self._check_fitted()
        evaluator = Evaluator(target, [self.train] if exclude is None else exclude, ks=ks,
                              chunk_size=self.block_size)
        return evaluator.evaluate_scores(lambda cu: self._block_scores(cu.numpy()))

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"

    def hyperparameters(self) -> dict:
        """The constructor arguments, by name (what a summary or a saved model records)."""
        keys = ("k", "svd", "oversample", "power_iters", "seed", "memory_mb", "block_users",
                "dtype") + self._own_keys
        return {key: getattr(self, key) for key in keys}


class GFCF(GraphFilter):
    r"""GF-CF: ``ŝ_u = r_u (P̃ + α D_I^{-1/2} V_k V_kᵀ D_I^{1/2})`` (module docstring).

    Args: ``alpha`` (default 0.3) and ``k`` (default 256), the paper's Gowalla values; the
    rest as :class:`GraphFilter`.

    Example::

        model = GFCF().fit(ds.train_csr)
        metrics = model.evaluate(ds.test_csr)      # training items excluded
    """

    name = "gfcf"
    _own_keys = ("alpha",)

    def __init__(self, alpha: float = 0.3, k: int = 256, **kwargs):
        self.alpha = self.weight = _check_number("GFCF", "alpha", alpha)
        super().__init__(k, **kwargs)

    def linear_polynomial(self) -> np.ndarray:
        return np.array([0.0, 1.0])

    def ideal_polynomial(self) -> np.ndarray:
        return np.array([1.0])


class BSPM(GraphFilter):
    r"""BSPM: blurring, ideal low-pass, then sharpening (module docstring).

    Args (defaults: the paper's Gowalla settings):
        beta: weight ``β`` of the ideal low-pass filter (0.2).
        k: its singular vectors (448).
        blur_time, blur_steps: ``T_b`` and ``K_b`` Euler steps of the blurring (1.0, 1).
        sharpen_time, sharpen_steps: ``T_s`` and ``K_s`` steps of the sharpening (2.5, 1);
            ``sharpen_time=0`` turns sharpening off.
        sharpen_solver: ``"rk4"`` (default) or ``"euler"``.
        final_sharpening: sharpen the ideal part too (True) or add it afterwards.
        The rest as :class:`GraphFilter`.
    """

    name = "bspm"
    _own_keys = ("beta", "blur_time", "blur_steps", "sharpen_time", "sharpen_steps",
                 "sharpen_solver", "final_sharpening")

    def __init__(self, beta: float = 0.2, k: int = 448, blur_time: float = 1.0,
                 blur_steps: int = 1, sharpen_time: float = 2.5, sharpen_steps: int = 1,
                 sharpen_solver: str = "rk4", final_sharpening: bool = True, **kwargs):
        self.beta = self.weight = _check_number("BSPM", "beta", beta)
        self.blur_time = _check_number("BSPM", "blur_time", blur_time)
        self.blur_steps = _check_int("BSPM", "blur_steps", blur_steps, 1)
        self.sharpen_time = _check_number("BSPM", "sharpen_time", sharpen_time)
        self.sharpen_steps = _check_int("BSPM", "sharpen_steps", sharpen_steps, 1)
        if sharpen_solver not in SOLVERS:
            raise ValueError(f"BSPM(): sharpen_solver must be one of {list(SOLVERS)}, but got "
                             f"{sharpen_solver!r}")
        if not isinstance(final_sharpening, bool):
            raise ValueError(f"BSPM(): final_sharpening must be True or False, but got "
                             f"{final_sharpening!r}")
        self.sharpen_solver, self.final_sharpening = sharpen_solver, final_sharpening
        super().__init__(k, **kwargs)

    def blur_polynomial(self) -> np.ndarray:
        """``b(x) = (1 − τ_b + τ_b x)^{K_b}``, ``τ_b = T_b / K_b``."""
        tau = self.blur_time / self.blur_steps
        return poly.polypow([1.0 - tau, tau], self.blur_steps)

    def sharpen_polynomial(self) -> np.ndarray:
        """``p(x) = φ(−τ_s x)^{K_s}``, ``φ`` the solver's Taylor polynomial of ``exp``."""
        tau = self.sharpen_time / self.sharpen_steps
        step = [(-tau) ** j / math.factorial(j) for j in range(SOLVERS[self.sharpen_solver] + 1)]
        return poly.polypow(step, self.sharpen_steps)

    def linear_polynomial(self) -> np.ndarray:
        return poly.polymul(self.blur_polynomial(), self.sharpen_polynomial())

    def ideal_polynomial(self) -> np.ndarray:
        return self.sharpen_polynomial() if self.final_sharpening else np.array([1.0])


#: The graph filters by name (the lead moves them into the model registry, gnn.models).
FILTERS = {"gfcf": GFCF, "bspm": BSPM}
