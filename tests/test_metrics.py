"""Tests of the ranking-metric oracle gnn.metrics.ranking_metrics and of gnn.csr.

``brute_force_metrics`` below is an independent reference (a Python loop over users, float64,
``sorted`` with an explicit (-score, item id) key); test_evaluate.py imports it too.
"""
import math

import numpy as np
import pytest
import torch

from gnn.csr import csr_from_pairs
from gnn.metrics import ranking_metrics

L3 = 1.0 / math.log2(3)  # discount at rank 2 = 0.6309297535714575


def brute_force_metrics(scores, train_sets, test_sets, ks):
    """Reference metrics: ``train_sets[u]`` / ``test_sets[u]`` are Python sets of item ids."""
    scores = np.asarray(scores, dtype=np.float64)
    n_users, n_items = scores.shape
    totals = {f"{m}@{k}": 0.0 for k in ks for m in ("recall", "precision", "ndcg", "hit")}
    n_eval = 0
    for u in range(n_users):
        test = set(test_sets[u])
        if not test:
            continue
        n_eval += 1
        candidates = [j for j in range(n_items) if j not in train_sets[u]]
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
    out = {key: val / n_eval for key, val in totals.items()}
    out["n_users_evaluated"] = n_eval
    return out


def sets_from_csr(indptr, indices):
    return [set(indices[indptr[u]:indptr[u + 1]].tolist()) for u in range(len(indptr) - 1)]


def assert_metrics_close(got, want, tol=1e-12):
    assert set(got) == set(want), (sorted(got), sorted(want))
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=tol, rel=tol), key


def random_case(seed, n_users=23, n_items=17, int_scores=True):
    """Random scores plus train/test CSRs with awkward users: no test items, almost everything
    (or everything) in training, train/test overlap, duplicate test entries."""
    rng = np.random.default_rng(seed)
    if int_scores:  # small integers: many ties, which exercises the tie rule
        scores = rng.integers(-3, 4, size=(n_users, n_items)).astype(np.float64)
    else:
        scores = rng.standard_normal((n_users, n_items))
    tu, ti, su, si = [], [], [], []
    for u in range(n_users):
        kind = u % 6
        n_train = {0: 0, 1: n_items - 1, 2: n_items}.get(kind, rng.integers(0, n_items // 2))
        train = rng.choice(n_items, size=n_train, replace=False)
        n_test = 0 if kind == 3 else rng.integers(1, n_items // 2)
        test = rng.integers(0, n_items, size=n_test)  # with repeats, may overlap train
        tu += [u] * len(train); ti += train.tolist()
        su += [u] * len(test); si += test.tolist()
    train = csr_from_pairs(np.array(tu, dtype=np.int64), np.array(ti, dtype=np.int64), n_users)
    test = csr_from_pairs(np.array(su, dtype=np.int64), np.array(si, dtype=np.int64), n_users)
    return scores, train, test


# ----------------------------------------------------------------------------- hand-computed
# 5 items, 4 users; ranks are 1-based, discount(r) = 1/log2(r+1): d1 = 1, d2 = 1/log2 3 = L3.
#
# user 0: scores [.9 .8 .7 .6 .5], train {0}, test {2, 4}
#   ranking without item 0: 1, 2, 3, 4 -> item 2 (a test item) at rank 2.
#   K=2: hits 1: recall 1/2, precision 1/2, hit 1, NDCG = L3 / (1 + L3)     (IDCG over min(2,2)=2)
#   K=3: hits 1: recall 1/2, precision 1/3, hit 1, NDCG = L3 / (1 + L3)     (IDCG over min(3,2)=2)
# user 1: scores [.1 .5 .5 .2 .3], train {}, test {2}
#   items 1 and 2 tie at .5 -> lower id first: ranking 1, 2, 4, 3, 0 -> item 2 at rank 2.
#   K=2: recall 1, precision 1/2, hit 1, NDCG = L3 / 1
#   K=3: recall 1, precision 1/3, hit 1, NDCG = L3
# user 2: train {1}, no test items -> skipped.
# user 3: scores [.3 .1 .9 .2 .8], train {1, 2, 4}, test {0, 3}
#   only items 0 (.3) and 3 (.2) are rankable: ranking 0, 3 -> both are hits, the list is short.
#   K=2: recall 1, precision 1, hit 1, NDCG = (1 + L3) / (1 + L3) = 1
#   K=3: recall 1, precision 2/3 (denominator stays K), hit 1, NDCG = 1   (IDCG over min(3,2)=2)
# means over the 3 evaluated users:
#   recall@2 = (1/2 + 1 + 1)/3 = 5/6 = 0.833333     precision@2 = (1/2 + 1/2 + 1)/3 = 2/3
#   recall@3 = 5/6                                    precision@3 = (1/3 + 1/3 + 2/3)/3 = 4/9
#   hit@2 = hit@3 = 1
#   ndcg@2 = ndcg@3 = (0.3868528 + 0.6309298 + 1)/3 = 0.6725942
HAND_SCORES = np.array([
    [0.9, 0.8, 0.7, 0.6, 0.5],
    [0.1, 0.5, 0.5, 0.2, 0.3],
    [0.0, 0.0, 0.0, 0.0, 0.0],
    [0.3, 0.1, 0.9, 0.2, 0.8],
])
HAND_TRAIN = (np.array([0, 1, 1, 2, 5]), np.array([0, 1, 1, 2, 4]))
HAND_TEST = (np.array([0, 2, 3, 3, 5]), np.array([2, 4, 2, 0, 3]))
HAND_EXPECTED = {
    "recall@2": 5 / 6, "precision@2": 2 / 3, "ndcg@2": 0.6725941869, "hit@2": 1.0,
    "recall@3": 5 / 6, "precision@3": 4 / 9, "ndcg@3": 0.6725941869, "hit@3": 1.0,
    "n_users_evaluated": 3,
}


def test_hand_computed_example():
    got = ranking_metrics(HAND_SCORES, *HAND_TRAIN, *HAND_TEST, ks=(2, 3))
    assert_metrics_close(got, HAND_EXPECTED, tol=1e-9)
    assert got["ndcg@2"] == pytest.approx((L3 / (1 + L3) + L3 + 1) / 3, abs=1e-15)
    assert list(got) == ["recall@2", "precision@2", "ndcg@2", "hit@2",
                         "recall@3", "precision@3", "ndcg@3", "hit@3", "n_users_evaluated"]
    assert all(type(v) is float for k, v in got.items() if k != "n_users_evaluated")
    assert type(got["n_users_evaluated"]) is int


def test_hand_example_matches_brute_force():
    want = brute_force_metrics(HAND_SCORES, sets_from_csr(*HAND_TRAIN), sets_from_csr(*HAND_TEST), (2, 3))
    assert_metrics_close(want, HAND_EXPECTED, tol=1e-9)


def test_idcg_uses_test_set_size_not_hits():
    # One user, 5 test items, 30 items, K=20; the only hit is at rank 1 (item 0 scores highest,
    # the other test items score lowest). DCG = 1; IDCG = Σ_{r=1..5} 1/log2(r+1) = 2.9485;
    # NDCG = 0.33916, not the 1.0 that an IDCG built from the hits in the list would give.
    scores = -np.arange(30, dtype=np.float64)[None, :]
    test = (np.array([0, 5]), np.array([0, 25, 26, 27, 28]))
    train = (np.array([0, 0]), np.array([], dtype=np.int64))
    got = ranking_metrics(scores, *train, *test, ks=20)
    idcg5 = 1 + L3 + 0.5 + 1 / math.log2(5) + 1 / math.log2(6)
    assert idcg5 == pytest.approx(2.948459118879392)
    assert got["ndcg@20"] == pytest.approx(1 / idcg5, abs=1e-15)
    assert got["ndcg@20"] == pytest.approx(0.339160, abs=1e-6)
    assert got["recall@20"] == pytest.approx(1 / 5) and got["precision@20"] == pytest.approx(1 / 20)
    # and IDCG is capped at K when |T_u| > K: 5 test items, K=2, both top slots hit -> NDCG 1
    scores2 = np.zeros((1, 30))
    scores2[0, 25], scores2[0, 26] = 2.0, 1.0
    got2 = ranking_metrics(scores2, *train, *test, ks=2)
    assert got2["ndcg@2"] == pytest.approx(1.0) and got2["recall@2"] == pytest.approx(2 / 5)


def test_ties_lower_item_id_first():
    # all scores equal: the list is the lowest non-excluded item ids, in id order
    scores = np.zeros((1, 6))
    train = (np.array([0, 2]), np.array([0, 1]))
    test = (np.array([0, 1]), np.array([3]))  # ranking 2, 3, 4, 5 -> item 3 at rank 2
    got = ranking_metrics(scores, *train, *test, ks=(1, 2))
    assert got["hit@1"] == 0.0 and got["hit@2"] == 1.0
    assert got["ndcg@2"] == pytest.approx(L3)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("int_scores", [True, False])
def test_oracle_matches_brute_force(seed, int_scores):
    scores, train, test = random_case(seed, int_scores=int_scores)
    ks = (1, 3, 5, 17, 40)  # 17 = n_items, 40 > n_items
    got = ranking_metrics(scores, *train, *test, ks=ks)
    want = brute_force_metrics(scores, sets_from_csr(*train), sets_from_csr(*test), ks)
    assert_metrics_close(got, want)


def test_short_lists_and_fully_excluded_user():
    # user 0: every item excluded (also its test item) -> evaluated, all metrics 0
    # user 1: 2 rankable items, K=5: both hits -> precision 2/5, recall 1, ndcg 1
    scores = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    train = (np.array([0, 3, 4]), np.array([0, 1, 2, 0]))
    test = (np.array([0, 1, 3]), np.array([1, 1, 2]))
    got = ranking_metrics(scores, *train, *test, ks=5)
    assert got["n_users_evaluated"] == 2
    assert got["precision@5"] == pytest.approx((0 + 2 / 5) / 2)
    assert got["recall@5"] == pytest.approx(0.5)
    assert got["ndcg@5"] == pytest.approx(0.5)
    assert got["hit@5"] == pytest.approx(0.5)


def test_test_item_in_training_counts_in_denominator_and_duplicates_once():
    # test {0, 1, 1}: distinct {0, 1}; item 0 is excluded, item 1 is ranked first
    scores = np.array([[5.0, 4.0, 3.0]])
    train = (np.array([0, 1]), np.array([0]))
    test = (np.array([0, 3]), np.array([0, 1, 1]))
    got = ranking_metrics(scores, *train, *test, ks=1)
    assert got["recall@1"] == pytest.approx(0.5) and got["ndcg@1"] == pytest.approx(1.0)


def test_torch_and_numpy_inputs_agree():
    scores, train, test = random_case(11, int_scores=False)
    want = ranking_metrics(scores, *train, *test, ks=(2, 5))
    got = ranking_metrics(torch.tensor(scores, dtype=torch.float64, requires_grad=True),
                          torch.from_numpy(train[0]), torch.from_numpy(train[1]).int(),
                          torch.from_numpy(test[0]).int(), torch.from_numpy(test[1]), ks=[2, 5])
    assert got == want
    got32 = ranking_metrics(torch.tensor(scores, dtype=torch.float32), *train, *test, ks=(2, 5))
    want32 = ranking_metrics(scores.astype(np.float32), *train, *test, ks=(2, 5))
    assert got32 == want32


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_raise(bad):
    scores, train, test = random_case(0)
    scores[4, 3] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        ranking_metrics(scores, *train, *test)


def test_validation_errors_name_the_argument():
    scores, (trp, tri), (tep, tei) = random_case(1)
    n_items = scores.shape[1]
    with pytest.raises(ValueError, match="scores must be 2-D"):
        ranking_metrics(scores[0], trp, tri, tep, tei)
    with pytest.raises(ValueError, match="train indptr must have length"):
        ranking_metrics(scores, trp[:-1], tri, tep, tei)
    with pytest.raises(ValueError, match="test indptr must be non-decreasing"):
        bad = tep.copy(); bad[2], bad[3] = bad[3] + 1, bad[2]
        ranking_metrics(scores, trp, tri, bad, tei)
    with pytest.raises(ValueError, match=r"test indptr\[-1\] must equal"):
        ranking_metrics(scores, trp, tri, tep, tei[:-1])
    with pytest.raises(ValueError, match="test indptr must start at 0"):
        ranking_metrics(scores, trp, tri, tep + 1, tei)
    with pytest.raises(ValueError, match="train indices must lie in"):
        bad = tri.copy(); bad[0] = n_items
        ranking_metrics(scores, trp, bad, tep, tei)
    with pytest.raises(ValueError, match="test indices must hold integers"):
        ranking_metrics(scores, trp, tri, tep, tei.astype(np.float64))
    for ks in [(), (0,), (2.0,), (-1, 3)]:
        with pytest.raises(ValueError, match="ks"):
            ranking_metrics(scores, trp, tri, tep, tei, ks=ks)


def test_no_evaluable_user_raises():
    scores = np.ones((3, 4))
    empty = (np.zeros(4, dtype=np.int64), np.zeros(0, dtype=np.int64))
    with pytest.raises(ValueError, match="no user has a test item"):
        ranking_metrics(scores, *empty, *empty)


def test_csr_from_pairs_sorts_and_deduplicates():
    indptr, indices = csr_from_pairs(torch.tensor([2, 0, 2, 2, 0]), np.array([5, 1, 3, 5, 0]), 4)
    assert indptr.tolist() == [0, 2, 2, 4, 4] and indices.tolist() == [0, 1, 3, 5]
    assert indptr.dtype == np.int64 and indices.dtype == np.int64
    indptr, indices = csr_from_pairs(np.array([], dtype=np.int64), np.array([], dtype=np.int64), 3)
    assert indptr.tolist() == [0, 0, 0, 0] and indices.size == 0
    with pytest.raises(ValueError, match="user ids must lie in"):
        csr_from_pairs([0, 3], [1, 1], 3)
    with pytest.raises(ValueError, match="same length"):
        csr_from_pairs([0, 1], [1], 3)
