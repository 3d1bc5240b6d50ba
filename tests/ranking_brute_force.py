"""The brute-force ranking metrics: an independent reference for the dense oracle
(gnn.evaluation.reference) and the chunked evaluator (gnn.evaluation.Evaluator).

A Python loop over users in float64, ``sorted`` with an explicit (-score, item id) key, and the
definitions of docs/DESIGN.md §3 written out term by term. Tiny inputs only.
"""
import math

import numpy as np
import pytest

METRIC_NAMES = ("recall", "precision", "ndcg", "hit", "mrr", "map")


def sets_of(csr):
    """Each user's items of a :class:`gnn.data.UserItemCSR` as Python sets."""
    return [set(csr.items_of(u).tolist()) for u in range(csr.n_users)]


def brute_force_metrics(scores, excluded_sets, test_sets, ks):
    """Mean recall / precision / NDCG / hit / MRR / MAP at each K over users with a test item,
    and item coverage at each K (the share of items in at least one list).

    ``excluded_sets[u]`` / ``test_sets[u]`` are Python sets of item ids.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n_users, n_items = scores.shape
    totals = {f"{m}@{k}": 0.0 for k in ks for m in METRIC_NAMES}
    listed = {k: set() for k in ks}
    n_eval = 0
    for u in range(n_users):
        test = set(test_sets[u])
        if not test:
            continue
        n_eval += 1
        candidates = [j for j in range(n_items) if j not in excluded_sets[u]]
        ranked = sorted(candidates, key=lambda j: (-scores[u, j], j))
        for k in ks:
            top = ranked[:k]
            hits = sum(1 for j in top if j in test)
            dcg = sum(1.0 / math.log2(r + 2) for r, j in enumerate(top) if j in test)
            idcg = sum(1.0 / math.log2(r + 2) for r in range(min(k, len(test))))
            totals[f"recall@{k}"] += hits / len(test)
            totals[f"precision@{k}"] += hits / k
            totals[f"ndcg@{k}"] += dcg / idcg
            totals[f"hit@{k}"] += 1.0 if hits > 0 else 0.0
            hit_ranks = [r + 1 for r, j in enumerate(top) if j in test]
            totals[f"mrr@{k}"] += 1.0 / hit_ranks[0] if hit_ranks else 0.0
            # average precision: precision at the rank of each hit, over min(k, |T|)
            totals[f"map@{k}"] += sum((n + 1) / r for n, r in enumerate(hit_ranks)) / min(k, len(test))
            listed[k].update(top)
    out = {key: val / n_eval for key, val in totals.items()}
    out.update({f"coverage@{k}": len(listed[k]) / n_items for k in ks})
    out["n_users_evaluated"] = n_eval
    return out


def assert_metrics_close(got, want, tol=1e-12):
    """Same keys, every value within ``tol`` (absolute and relative)."""
    assert set(got) == set(want), (sorted(got), sorted(want))
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=tol, rel=tol), key
