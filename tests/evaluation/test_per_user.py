"""Per-user metric vectors (Evaluator per_user=True) and the paired comparison of two models
(issue 17, problem 10), against a per-user brute force and scipy."""
import numpy as np
import pytest
import torch
from scipy import stats

from gnn import Evaluator
from gnn.evaluation import paired_test
from ranking_brute_force import brute_force_metrics, sets_of
from ranking_cases import random_embedding_case

KS = (1, 3, 10)


def evaluators(seed, chunk):
    ue, ie, parts = random_embedding_case(seed, ties=True)
    ev = Evaluator(parts["test"], exclude=[parts["train"], parts["valid"]], ks=KS,
                   chunk_size=chunk)
    return ue, ie, parts, ev


@pytest.mark.parametrize("chunk", [1, 5, 1000])
@pytest.mark.parametrize("seed", range(3))
def test_per_user_values_are_each_users_brute_force(seed, chunk):
    ue, ie, parts, ev = evaluators(seed, chunk)
    per_user = ev.evaluate(ue, ie, per_user=True)
    scores = (ue @ ie.T).numpy()
    excluded = sets_of(parts["train"].union(parts["valid"]))
    test = sets_of(parts["test"])
    assert list(per_user["user"]) == [u for u in range(len(test)) if test[u]]
    for pos, u in enumerate(per_user["user"]):
        only_u = [t if v == u else set() for v, t in enumerate(test)]
        want = brute_force_metrics(scores, excluded, only_u, KS)
        for key, value in want.items():
            if key != "n_users_evaluated" and not key.startswith("coverage"):
                assert per_user[key][pos] == pytest.approx(value, abs=1e-12), (u, key)
    means = ev.evaluate(ue, ie)
    for key, values in per_user.items():
        if key != "user":
            assert values.dtype == np.float64 and values.shape == per_user["user"].shape
            assert values.mean() == pytest.approx(means[key], abs=1e-12), key


def test_paired_test_is_scipys_on_the_per_user_vectors():
    ue, ie, parts, ev = evaluators(0, 7)
    a = ev.evaluate(ue, ie, per_user=True)
    b = ev.evaluate(ue.flip(0), ie, per_user=True)  # another "model": users' rows shuffled
    got = paired_test(a, b, "recall@10")
    x, y = a["recall@10"], b["recall@10"]
    assert got["n_users"] == x.size and got["mean_diff"] == pytest.approx((x - y).mean())
    assert got["t_pvalue"] == pytest.approx(stats.ttest_rel(x, y).pvalue)
    assert got["wilcoxon_pvalue"] == pytest.approx(stats.wilcoxon(x, y).pvalue)
    assert got["mean_a"] == pytest.approx(ev.evaluate(ue, ie)["recall@10"])


def test_paired_test_edge_cases():
    same = {"user": np.arange(4), "recall@20": np.array([0.125, 0.5, 0.0, 1.0])}
    got = paired_test(same, dict(same), "recall@20")
    assert (got["t_pvalue"], got["wilcoxon_pvalue"], got["mean_diff"]) == (1.0, 1.0, 0.0)
    shifted = dict(same, **{"recall@20": same["recall@20"] + 0.25})  # exact: no rounding
    got = paired_test(shifted, same, "recall@20")
    assert got["t_pvalue"] == 0.0 and got["t_statistic"] == np.inf
    with pytest.raises(ValueError, match="different users"):
        paired_test(same, {"user": np.arange(1, 5), "recall@20": same["recall@20"]})
    with pytest.raises(ValueError, match=r"no metric 'ndcg@20'; it has \['recall@20'\]"):
        paired_test(same, same, "ndcg@20")
    with pytest.raises(ValueError, match="per-user result"):
        paired_test({"recall@20": 0.3}, same)
    with pytest.raises(ValueError, match="at least 2 users"):
        one = {"user": np.arange(1), "recall@20": np.array([0.5])}
        paired_test(one, one)
