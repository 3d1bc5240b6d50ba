r"""ItemKNN: item-based nearest neighbours with cosine similarity, the non-neural baseline.

With ``R ∈ {0,1}^{n_u×n_i}`` the training interactions and ``d_i = |U_i|`` the number of users
of item ``i``, the cosine similarity of two items is

.. math::

    s_{ij} = \frac{|U_i \cap U_j|}{\sqrt{d_i}\,\sqrt{d_j} + \lambda}\qquad (i \ne j),

with an optional shrink term ``λ`` (0: plain cosine). Every item keeps its ``k`` most similar
items (``N_k(j)``; ties broken by ascending item id; self-similarity dropped), and user ``u``
scores item ``j`` by the similarity of ``j`` to the items ``u`` interacted with, summed over
``j``'s neighbourhood (Sarwar et al., WWW 2001; Deshpande & Karypis, TOIS 2004):

.. math:: \hat y_{uj} = \sum_{i \in N_k(j)} R_{ui}\, s_{ji},\qquad \hat Y = R\, W,\quad W = S_k^\top

where row ``j`` of the sparse ``S_k`` holds ``j``'s neighbours.

Everything is sparse: ``S_k`` is built ``block_size`` item rows at a time as a sparse product
``R_{:,block}ᵀ R`` (scipy), truncated to ``k`` entries per row before the next block, so peak
memory is that of one block's co-occurrences plus ``O(n_i · k)``; no dense item × item matrix
ever exists. Scores are dense only ``chunk_size`` users at a time (``chunk_size × n_i``), and
evaluation ranks them with :meth:`gnn.Evaluator.evaluate_scores`, the library's one evaluator
(same tie rule, exclusion and IDCG as for the graph models).
"""
from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np
import scipy.sparse as sp

from gnn.data import UserItemCSR
from gnn.evaluation import Evaluator
from gnn.models.closed_form import recommend_exclusion

__all__ = ["ItemKNN", "cosine_topk"]


def _topk_rows(block: sp.coo_matrix, k: int, row_offset: int):
    """Keep the ``k`` largest entries of every row of ``block`` (ties: smaller column first).

    Entries on the diagonal of the full matrix (column == row_offset + row) and non-positive
    entries are dropped first. Returns ``(rows, cols, vals)`` with rows in full-matrix numbering.
    """
    rows, cols, vals = block.row.astype(np.int64), block.col.astype(np.int64), block.data
    keep = (cols != rows + row_offset) & (vals > 0)
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    order = np.lexsort((cols, -vals, rows))  # by row, then value descending, then column
    rows, cols, vals = rows[order], cols[order], vals[order]
    counts = np.bincount(rows, minlength=block.shape[0])
    starts = np.cumsum(counts) - counts
    rank = np.arange(rows.size) - starts[rows]
    keep = rank < k
    return rows[keep] + row_offset, cols[keep], vals[keep]


def cosine_topk(R: sp.spmatrix, k: int, shrink: float = 0.0, block_size: int = 1024) -> sp.csr_matrix:
    """Sparse ``(n_items, n_items)`` item–item cosine similarity, top ``k`` per row, no diagonal.

    Args:
        R: ``(n_users, n_items)`` scipy sparse matrix of interactions (binary: any non-zero
            counts as one interaction).
        k: neighbours kept per item (>= 1).
        shrink: ``λ`` in the denominator ``sqrt(d_i d_j) + λ`` (>= 0; default 0).
        block_size: item rows computed at once; bounds the memory of the co-occurrence block.

    Returns:
        CSR float32 matrix ``S_k`` whose row ``j`` holds the (at most) ``k`` items most similar to
        ``j`` with a positive similarity, columns sorted ascending. Items without users have an
        empty row.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"cosine_topk(): k must be a positive int, but got {k!r}")
    if not np.isfinite(shrink) or shrink < 0:
        raise ValueError(f"cosine_topk(): shrink must be a finite number >= 0, but got {shrink!r}")
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"cosine_topk(): block_size must be a positive int, but got {block_size!r}")
    R = sp.csr_matrix(R, dtype=np.float32, copy=True)
    R.sum_duplicates()
    R.data[:] = 1.0
    R.eliminate_zeros()
    n_items = R.shape[1]
    norm = np.sqrt(np.asarray(R.sum(axis=0), dtype=np.float64).ravel())  # sqrt(d_i)
    Rt = R.T.tocsr()  # (n_items, n_users)
    rows, cols, vals = [], [], []
    for lo in range(0, n_items, block_size):
        hi = min(lo + block_size, n_items)
        co = (Rt[lo:hi] @ R).tocoo()  # co-occurrence counts |U_i ∩ U_j|, (hi - lo, n_items)
        denom = norm[co.row + lo] * norm[co.col] + shrink
        co.data = (co.data.astype(np.float64) / denom).astype(np.float32)
        r, c, v = _topk_rows(co, int(k), lo)
        rows.append(r), cols.append(c), vals.append(v)
        del co
    rows, cols, vals = (np.concatenate(x) if x else np.zeros(0) for x in (rows, cols, vals))
    S = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(n_items, n_items))
    S.sort_indices()
    return S


class ItemKNN:
    r"""Item-based k-nearest-neighbour recommender with (shrunk) cosine similarity.

    .. math:: \hat y_{uj} = \sum_{i \in N_k(j)} R_{ui}\, s_{ji}

    Args:
        k: neighbours kept per item (default 200).
        shrink: shrink term ``λ`` of the cosine denominator (default 0).
        block_size: item rows of the similarity computed at once (default 1024).

    Example::

        knn = ItemKNN(k=200).fit(ds.train_csr)
        metrics = knn.evaluate(ds.test_csr)          # training items excluded
        top10 = knn.recommend([0, 1], k=10)
    """

    def __init__(self, k: int = 200, shrink: float = 0.0, block_size: int = 1024):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"ItemKNN(): k must be a positive int, but got {k!r}")
        if not np.isfinite(shrink) or shrink < 0:
            raise ValueError(f"ItemKNN(): shrink must be a finite number >= 0, but got {shrink!r}")
        self.k, self.shrink, self.block_size = int(k), float(shrink), int(block_size)
        self.train: Optional[UserItemCSR] = None
        self.R: Optional[sp.csr_matrix] = None
        self.similarity: Optional[sp.csr_matrix] = None  # S_k, row j = neighbours of j
        self._W: Optional[sp.csr_matrix] = None  # S_kᵀ, so that scores = R W
        self.fit_seconds: Optional[float] = None

    def __repr__(self) -> str:
        fitted = "" if self.similarity is None else f", nnz={self.similarity.nnz}"
        return f"ItemKNN(k={self.k}, shrink={self.shrink}{fitted})"

    @property
    def n_users(self) -> int:
        return self.train.n_users

    @property
    def n_items(self) -> int:
        return self.train.n_items

    def fit(self, train: UserItemCSR) -> "ItemKNN":
        """Build ``S_k`` from the training interactions."""
        if not isinstance(train, UserItemCSR):
            raise TypeError(f"ItemKNN.fit(): train must be a gnn.data.UserItemCSR (e.g. "
                            f"dataset.train_csr), but got {type(train).__name__}")
        start = time.perf_counter()
        self.train, self.R = train, train.to_scipy(np.float32)
        self.similarity = cosine_topk(self.R, self.k, self.shrink, self.block_size)
        self._W = self.similarity.T.tocsr()
        self.fit_seconds = time.perf_counter() - start
        return self

    def _check_fitted(self):
        if self.similarity is None:
            raise RuntimeError("ItemKNN: call fit() first")

    def score(self, users) -> np.ndarray:
        """Dense ``(len(users), n_items)`` float32 scores ``R[users] · S_kᵀ``."""
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        if users.size and (users.min() < 0 or users.max() >= self.n_users):
            raise ValueError(f"users must lie in [0, {self.n_users}), but got range "
                             f"[{users.min()}, {users.max()}]")
        # The product is a sparse (len(users), n_items) score block; scatter it into a dense
        # block of that size only (callers chunk the users, so memory stays bounded).
        block = (self.R[users] @ self._W).tocoo()
        scores = np.zeros(block.shape, dtype=np.float32)
        scores[block.row, block.col] = block.data
        return scores

    def hyperparameters(self) -> dict:
        """The constructor arguments, by name (what a saved model records)."""
        return {"k": self.k, "shrink": self.shrink, "block_size": self.block_size}

    def recommend(self, users, k: int = 10, *, exclude: Optional[UserItemCSR] = None,
                  return_scores: bool = False):
        """Top-``k`` items of each user, best first (ties: ascending item id), never an excluded
        one (default: the training items); ``(len(users), k)``, -1 where fewer items remain
        (and their scores, -inf there, with ``return_scores``)."""
        self._check_fitted()
        exclude = recommend_exclusion(k, exclude, self.train)
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        scores = self.score(users).astype(np.float64)
        seen = exclude.to_scipy()[users].tocoo()
        scores[seen.row, seen.col] = -np.inf
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(scores, order, axis=1)
        order[top == -np.inf] = -1
        if k > self.n_items:
            order = np.pad(order, ((0, 0), (0, k - self.n_items)), constant_values=-1)
            top = np.pad(top, ((0, 0), (0, k - self.n_items)), constant_values=-np.inf)
        return (order, top) if return_scores else order

    def evaluate(self, target: UserItemCSR, exclude: Optional[Sequence[UserItemCSR]] = None,
                 ks=(20,), chunk_size: int = 1024) -> dict:
        """Full-ranking metrics against ``target``; ``exclude`` defaults to the training items."""
        self._check_fitted()
        evaluator = Evaluator(target, [self.train] if exclude is None else exclude, ks=ks,
                              chunk_size=chunk_size)
        return evaluator.evaluate_scores(lambda users: self.score(users.cpu().numpy()))
