r"""Top-K ranking metrics on a dense score matrix: the reference (oracle) the chunked
:class:`gnn.evaluation.Evaluator` is tested against (as ``gnn.kernels``' reference is for the
kernels). Dense ``n_users x n_items`` arrays: for tests and small data only.

The definitions (docs/DESIGN.md §3): for every user ``u`` with at least one test item, all items
are ranked by score, the user's excluded items removed, and the first ``K`` items of what
remains form the list. With ``T_u`` the set of distinct test items, ``rel_r = [item at rank r ∈
T_u]`` and ``hits = Σ_{r≤K} rel_r``:

.. math::

    \mathrm{recall@K} = \frac{hits}{|T_u|},\quad
    \mathrm{precision@K} = \frac{hits}{K},\quad
    \mathrm{hit@K} = [hits > 0],\quad
    \mathrm{NDCG@K} = \frac{\sum_{r\le K} rel_r / \log_2(r+1)}
                           {\sum_{r\le \min(K, |T_u|)} 1/\log_2(r+1)}

    \mathrm{MRR@K} = \max_{r \le K} \frac{rel_r}{r},\quad
    \mathrm{MAP@K} = \frac{1}{\min(K, |T_u|)} \sum_{r\le K} rel_r\,\frac{hits_{\le r}}{r}

averaged over the evaluated users; ``coverage@K`` is the share of all items that are in at
least one evaluated user's list. The ideal DCG depends on ``|T_u|`` only, never on the hits
found in the list (building it from the hits would inflate NDCG).

Conventions shared with the evaluator:

* **Ties**: items with equal scores are ranked by ascending item id.
* **Short lists**: if fewer than ``K`` items remain after exclusion, the list is shorter; the
  denominators stay ``K`` (precision) and ``min(K, |T_u|)`` (IDCG). A user whose items are all
  excluded is still evaluated and scores 0 everywhere.
* A test item that is also excluded cannot be hit but still counts in ``|T_u|``.
* Scores must be finite: NaN or ±inf raises ``ValueError`` (never NaN metrics).
"""
from __future__ import annotations

import numpy as np
import torch

from gnn.data import UserItemCSR
from gnn.evaluation.ks import normalize_ks

__all__ = ["ranking_metrics"]


def ranking_metrics(scores, exclude: UserItemCSR, test: UserItemCSR, ks=(20,)) -> dict:
    """Full-ranking recall / precision / NDCG / hit rate at each K of ``ks`` (module docstring).

    Args:
        scores: dense ``(n_users, n_items)`` tensor or ndarray of finite scores.
        exclude: each user's excluded items; test: each user's test items (users with none
            are skipped). Both :class:`gnn.data.UserItemCSR` of the scores' shape.
        ks: an int or a sequence of positive ints (default ``(20,)``).

    Returns:
        ``{"recall@K", "precision@K", "ndcg@K", "hit@K", "mrr@K", "map@K", "coverage@K"}``
        (floats) for every K, plus ``"n_users_evaluated"`` (int).
    """
    ks = normalize_ks(ks)
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu().numpy()
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (n_users, n_items), but got shape {scores.shape}")
    if not (np.issubdtype(scores.dtype, np.floating) or np.issubdtype(scores.dtype, np.integer)):
        raise ValueError(f"scores must be real numbers, but got dtype {scores.dtype}")
    n_users, n_items = scores.shape
    for name, csr in (("exclude", exclude), ("test", test)):
        if not isinstance(csr, UserItemCSR) or csr.shape != scores.shape:
            raise ValueError(f"{name} must be a UserItemCSR of shape {scores.shape}, but got {csr!r}")
    scores = scores.astype(np.float64)  # exact for float16/32 and small ints: order and ties kept
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or inf; ranking metrics need finite scores")

    def dense_mask(csr):
        mask = np.zeros((n_users, n_items), dtype=bool)
        mask[csr.users(), csr.indices] = True
        return mask

    is_test = dense_mask(test)
    n_test = is_test.sum(axis=1)
    users = np.flatnonzero(n_test > 0)
    if users.size == 0:
        raise ValueError("no user has a test item: nothing to evaluate")
    excluded = dense_mask(exclude)[users]

    # Sort key: excluded items last (+inf), the rest by descending score; the stable sort keeps
    # ascending item id among equal keys (the tie rule).
    key = np.where(excluded, np.inf, -scores[users])
    kmax = min(max(ks), n_items)
    order = np.argsort(key, axis=1, kind="stable")[:, :kmax]
    in_list = np.take_along_axis(key, order, axis=1) < np.inf
    rel = (np.take_along_axis(is_test[users], order, axis=1) & in_list).astype(np.float64)

    n_test = n_test[users]
    discount = 1.0 / np.log2(np.arange(2, max(ks) + 2, dtype=np.float64))  # rank r -> 1/log2(r+1)
    ideal = np.cumsum(discount)
    ranks = np.arange(1, kmax + 1, dtype=np.float64)
    out, coverage = {}, {}
    for k in ks:
        hits = rel[:, :k].sum(axis=1)
        dcg = rel[:, :k] @ discount[:min(k, kmax)]
        idcg = ideal[np.minimum(k, n_test) - 1]
        out[f"recall@{k}"] = float(np.mean(hits / n_test))
        out[f"precision@{k}"] = float(np.mean(hits / k))
        out[f"ndcg@{k}"] = float(np.mean(dcg / idcg))
        out[f"hit@{k}"] = float(np.mean(hits > 0))
        kk = min(k, kmax)
        first = np.where(rel[:, :kk].any(axis=1), rel[:, :kk].argmax(axis=1) + 1.0, np.inf)
        out[f"mrr@{k}"] = float(np.mean(1.0 / first))
        precision_at = np.cumsum(rel[:, :kk], axis=1) / ranks[:kk]
        ap = (rel[:, :kk] * precision_at).sum(axis=1) / np.minimum(k, n_test)
        out[f"map@{k}"] = float(np.mean(ap))
        listed = order[:, :kk][in_list[:, :kk]]
        coverage[f"coverage@{k}"] = float(np.unique(listed).size / n_items)
    out.update(coverage)
    out["n_users_evaluated"] = int(users.size)
    return out
