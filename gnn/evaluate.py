r"""Full-ranking evaluation from embeddings, in user chunks (CPU or CUDA).

``scores = user_emb[chunk] @ item_emb.T`` is formed for ``chunk_size`` users at a time, so memory
is ``O(chunk_size · n_items)`` whatever the number of users. Excluded items (training items, and
validation items when testing) are set to ``-inf`` with one vectorised scatter per chunk, one
``topk`` with the largest K serves every K, test membership of the top-K items is a binary search
over sorted ``(user, item)`` keys, and per-user metrics are summed on the device.

The metrics, the tie rule (equal scores: lower item id first) and the edge-case conventions are
exactly those of the oracle :func:`gnn.metrics.ranking_metrics`; see its module docstring.
``torch.topk`` does not order ties deterministically, so ties are repaired exactly: the K
selected entries are re-sorted by (score desc, item id asc), and a row where items tied with the
K-th score were left out is re-ranked by a full stable sort (rare with real-valued scores).
"""
from __future__ import annotations

import numpy as np
import torch

from gnn.csr import check_csr, csr_from_pairs
from gnn.metrics import normalize_ks

__all__ = ["evaluate_ranking", "evaluate_scores", "csr_from_pairs"]


def _to_device(x: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).to(device)


def _dedup_csr(indptr: np.ndarray, indices: np.ndarray):
    """The same CSR with each row's indices sorted and duplicates dropped."""
    rows = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    order = np.lexsort((indices, rows))
    rows, indices = rows[order], indices[order]
    keep = np.ones(rows.size, dtype=bool)
    keep[1:] = (rows[1:] != rows[:-1]) | (indices[1:] != indices[:-1])
    counts = np.bincount(rows[keep], minlength=indptr.size - 1)
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64), indices[keep]


def _rows_cols(indptr: torch.Tensor, indices: torch.Tensor, users: torch.Tensor):
    """(row-in-chunk, item) coordinates of the CSR entries of ``users``, without a Python loop."""
    start = indptr[users]
    count = indptr[users + 1] - start
    rows = torch.repeat_interleave(torch.arange(users.numel(), device=users.device), count)
    # position of each entry = start of its user + its offset inside that user's slice
    first = torch.cumsum(count, 0) - count
    pos = torch.arange(rows.numel(), device=users.device) + (start - first)[rows]
    return rows, indices[pos]


@torch.no_grad()
def evaluate_ranking(user_emb, item_emb, test_indptr, test_indices, exclude=(), ks=(20,),
                     chunk_size: int = 1024, users=None) -> dict:
    r"""Recall / precision / NDCG / hit rate at each K, ranking all items for every test user.

    .. math:: \mathrm{NDCG@K} = \frac{\sum_{r\le K} rel_r/\log_2(r+1)}{\sum_{r\le\min(K,|T_u|)} 1/\log_2(r+1)}

    Args:
        user_emb: ``(n_users, d)`` tensor; item_emb: ``(n_items, d)`` tensor, same device/dtype.
        test_indptr, test_indices: CSR (numpy or torch) of each user's test items; users without
            test items are skipped.
        exclude: a sequence of ``(indptr, indices)`` CSR pairs whose items are removed from the
            ranking (training items; on test also validation items). Default: none.
        ks: an int or a sequence of positive ints (default ``(20,)``).
        chunk_size: users scored at once (default 1024); peak memory ``O(chunk_size · n_items)``.
        users: optional ids of the users to evaluate (a set; those without test items skipped).

    Returns:
        ``{"recall@K", "precision@K", "ndcg@K", "hit@K"}`` (floats, means over evaluated users)
        for every K, plus ``"n_users_evaluated"`` (int). Same keys and values as
        :func:`gnn.metrics.ranking_metrics` on ``user_emb @ item_emb.T``.

    Raises:
        ValueError: bad shapes or CSR, non-finite scores, or no user to evaluate.
    """
    ks = normalize_ks(ks)
    user_emb = torch.as_tensor(user_emb)
    item_emb = torch.as_tensor(item_emb)
    if user_emb.ndim != 2 or item_emb.ndim != 2:
        raise ValueError(f"user_emb and item_emb must be 2-D, but got shapes "
                         f"{tuple(user_emb.shape)} and {tuple(item_emb.shape)}")
    if user_emb.shape[1] != item_emb.shape[1]:
        raise ValueError(f"user_emb and item_emb must share the embedding size, but got "
                         f"{user_emb.shape[1]} and {item_emb.shape[1]}")
    if user_emb.device != item_emb.device:
        raise ValueError(f"user_emb and item_emb must be on the same device, but got "
                         f"{user_emb.device} and {item_emb.device}")
    if user_emb.dtype != item_emb.dtype or not user_emb.is_floating_point():
        raise ValueError(f"user_emb and item_emb must share a floating dtype, but got "
                         f"{user_emb.dtype} and {item_emb.dtype}")
    item_t = item_emb.t()
    return evaluate_scores(lambda cu: user_emb[cu] @ item_t, user_emb.shape[0], item_emb.shape[0],
                           test_indptr, test_indices, exclude=exclude, ks=ks,
                           chunk_size=chunk_size, users=users, device=user_emb.device)


def evaluate_scores(score_fn, n_users: int, n_items: int, test_indptr, test_indices, exclude=(),
                    ks=(20,), chunk_size: int = 1024, users=None, device="cpu") -> dict:
    """:func:`evaluate_ranking` for any scorer: ``score_fn(user_ids) -> (len(user_ids), n_items)``.

    ``score_fn`` receives a LongTensor of user ids on ``device`` and returns their dense scores
    (a tensor, or a numpy array that is moved to ``device``; the block is then modified in place:
    excluded items become -inf); it is called ``chunk_size`` users at a time, so a model that scores without embeddings (ItemKNN's ``R · Sᵀ``) gets the same
    bounded memory, exclusion, tie rule and metrics. Arguments and result as in
    :func:`evaluate_ranking`.
    """
    ks = normalize_ks(ks)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive int, but got {chunk_size!r}")
    device = torch.device(device)
    te_ptr, te_idx = check_csr(test_indptr, test_indices, n_users, n_items, "test")
    excl = []
    for j, pair in enumerate(exclude):
        if len(pair) != 2:
            raise ValueError(f"exclude[{j}] must be an (indptr, indices) pair; exclude is a sequence "
                             f"of pairs, so wrap a single pair as [(indptr, indices)]")
        ptr, idx = check_csr(pair[0], pair[1], n_users, n_items, f"exclude[{j}]")
        excl.append((_to_device(ptr, device), _to_device(idx, device)))

    has_test = np.diff(te_ptr) > 0
    if users is None:
        eval_users = np.flatnonzero(has_test)
    else:
        if isinstance(users, torch.Tensor):
            users = users.detach().cpu().numpy()
        users = np.unique(np.asarray(users, dtype=np.int64).reshape(-1))
        if users.size and (users[0] < 0 or users[-1] >= n_users):
            raise ValueError(f"users must lie in [0, {n_users}), but got range [{users[0]}, {users[-1]}]")
        eval_users = users[has_test[users]]
    if eval_users.size == 0:
        raise ValueError("no user to evaluate: none of the requested users has a test item")

    # Test items as sorted unique keys u·n_items + i (membership by binary search, no mask),
    # deduplicated so that |T_u| = distinct test items.
    te_ptr, te_idx = _dedup_csr(te_ptr, te_idx)
    te_cnt = _to_device(np.diff(te_ptr), device)
    te_key = _to_device(np.repeat(np.arange(n_users, dtype=np.int64), np.diff(te_ptr)) * n_items
                        + te_idx, device)
    eval_users = _to_device(eval_users, device)
    kmax, kbig = min(max(ks), n_items), max(ks)
    discount = 1.0 / torch.log2(torch.arange(2, kbig + 2, device=device, dtype=torch.float64))
    ideal = torch.cumsum(discount, 0)
    sums = torch.zeros(len(ks), 4, dtype=torch.float64, device=device)
    neg_inf = float("-inf")

    for lo in range(0, eval_users.numel(), chunk_size):
        cu = eval_users[lo:lo + chunk_size]
        s = torch.as_tensor(score_fn(cu), device=device)        # (B, n_items)
        if s.shape != (cu.numel(), n_items):
            raise ValueError(f"the scores of {cu.numel()} users must have shape "
                             f"({cu.numel()}, {n_items}), but got {tuple(s.shape)}")
        lo_hi = torch.aminmax(s)                                 # one pass; NaN propagates
        if not (torch.isfinite(lo_hi.min) & torch.isfinite(lo_hi.max)):
            raise ValueError("scores user_emb @ item_emb.T contain NaN or inf; "
                             "ranking metrics need finite scores")
        for ptr, idx in excl:
            r, c = _rows_cols(ptr, idx, cu)
            s[r, c] = neg_inf
        # One extra entry tells whether the K-th score is tied with an item left out.
        vals, top = torch.topk(s, min(kmax + 1, n_items), dim=1)  # sorted desc, ties arbitrary

        # Exact tie rule. (1) rows where the K-th score ties with the (K+1)-th: topk may have
        # picked any of the tied items, so re-rank them by a full stable sort (desc score, asc id).
        # Ties among excluded (-inf) items do not matter: they are never part of the list.
        if vals.shape[1] > kmax:
            boundary = (vals[:, kmax] == vals[:, kmax - 1]) & (vals[:, kmax - 1] > neg_inf)
            vals, top = vals[:, :kmax], top[:, :kmax]
            if boundary.any():
                rows = boundary.nonzero()[:, 0]
                v2, t2 = torch.sort(s[rows], dim=1, descending=True, stable=True)
                vals[rows], top[rows] = v2[:, :kmax], t2[:, :kmax]
        # (2) order the selected items by (score desc, id asc): sort by id, then stable by score.
        top, perm = torch.sort(top, dim=1)
        vals = torch.gather(vals, 1, perm)
        vals, perm = torch.sort(vals, dim=1, descending=True, stable=True)
        top = torch.gather(top, 1, perm)

        del s
        # rel = [top item is a test item]: binary search of the key u·n_items + i in te_key
        query = cu[:, None] * n_items + top
        pos = torch.searchsorted(te_key, query).clamp_(max=te_key.numel() - 1)
        rel = ((te_key[pos] == query) & (vals > neg_inf)).to(torch.float64)
        n_test = te_cnt[cu]

        for j, k in enumerate(ks):
            kk = min(k, kmax)
            hits = rel[:, :kk].sum(1)
            dcg = rel[:, :kk] @ discount[:kk]
            idcg = ideal[torch.clamp(n_test, max=k) - 1]
            sums[j, 0] += (hits / n_test).sum()
            sums[j, 1] += hits.sum() / k
            sums[j, 2] += (dcg / idcg).sum()
            sums[j, 3] += (hits > 0).sum()

    means = (sums / eval_users.numel()).tolist()
    out = {}
    for j, k in enumerate(ks):
        for m, name in enumerate(("recall", "precision", "ndcg", "hit")):
            out[f"{name}@{k}"] = float(means[j][m])
    out["n_users_evaluated"] = int(eval_users.numel())
    return out
