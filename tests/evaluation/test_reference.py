"""gnn.evaluation.reference: the dense ranking-metric oracle against a hand-computed example and
the brute force of tests/ranking_brute_force.py, with its edge cases and errors."""
import math

import numpy as np
import pytest
import torch

from gnn.evaluation.reference import ranking_metrics
from ranking_brute_force import assert_metrics_close, brute_force_metrics, sets_of
from ranking_cases import HAND_EXPECTED, HAND_SCORES, HAND_TEST, HAND_TRAIN, L3, csr, random_case


def test_hand_computed_example():
    got = ranking_metrics(HAND_SCORES, HAND_TRAIN, HAND_TEST, ks=(2, 3))
    assert_metrics_close(got, HAND_EXPECTED, tol=1e-9)
    assert got["ndcg@2"] == pytest.approx((L3 / (1 + L3) + L3 + 1) / 3, abs=1e-15)
    assert list(got) == list(HAND_EXPECTED)
    assert all(type(v) is float for k, v in got.items() if k != "n_users_evaluated")
    assert type(got["n_users_evaluated"]) is int


def test_hand_example_matches_brute_force():
    want = brute_force_metrics(HAND_SCORES, sets_of(HAND_TRAIN), sets_of(HAND_TEST), (2, 3))
    assert_metrics_close(want, HAND_EXPECTED, tol=1e-9)


def test_idcg_uses_the_test_set_size_not_the_hits():
    # One user, 5 test items, 30 items, K=20; the only hit is at rank 1 (item 0 scores highest,
    # the other test items score lowest). DCG = 1; IDCG = Σ_{r=1..5} 1/log2(r+1) = 2.9485;
    # NDCG = 0.33916, not the 1.0 that an IDCG built from the hits in the list would give.
    scores = -np.arange(30, dtype=np.float64)[None, :]
    test = csr([(0, 0), (0, 25), (0, 26), (0, 27), (0, 28)], 1, 30)
    nothing = csr([], 1, 30)
    got = ranking_metrics(scores, nothing, test, ks=20)
    idcg5 = 1 + L3 + 0.5 + 1 / math.log2(5) + 1 / math.log2(6)
    assert idcg5 == pytest.approx(2.948459118879392)
    assert got["ndcg@20"] == pytest.approx(1 / idcg5, abs=1e-15)
    assert got["ndcg@20"] == pytest.approx(0.339160, abs=1e-6)
    assert got["recall@20"] == pytest.approx(1 / 5) and got["precision@20"] == pytest.approx(1 / 20)
    # and IDCG is capped at K when |T_u| > K: 5 test items, K=2, both top slots hit -> NDCG 1
    scores2 = np.zeros((1, 30))
    scores2[0, 25], scores2[0, 26] = 2.0, 1.0
    got2 = ranking_metrics(scores2, nothing, test, ks=2)
    assert got2["ndcg@2"] == pytest.approx(1.0) and got2["recall@2"] == pytest.approx(2 / 5)


def test_ties_lower_item_id_first():
    # all scores equal: the list is the lowest non-excluded item ids, in id order
    scores = np.zeros((1, 6))
    got = ranking_metrics(scores, csr([(0, 0), (0, 1)], 1, 6), csr([(0, 3)], 1, 6), ks=(1, 2))
    assert got["hit@1"] == 0.0 and got["hit@2"] == 1.0  # ranking 2, 3, 4, 5: item 3 at rank 2
    assert got["ndcg@2"] == pytest.approx(L3)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("int_scores", [True, False])
def test_oracle_matches_brute_force(seed, int_scores):
    scores, exclude, test = random_case(seed, int_scores=int_scores)
    ks = (1, 3, 5, 17, 40)  # 17 = n_items, 40 > n_items
    got = ranking_metrics(scores, exclude, test, ks=ks)
    want = brute_force_metrics(scores, sets_of(exclude), sets_of(test), ks)
    assert_metrics_close(got, want)


def test_short_lists_and_a_fully_excluded_user():
    # user 0: every item excluded (also its test item) -> evaluated, all metrics 0
    # user 1: 2 rankable items, K=5: both hits -> precision 2/5, recall 1, ndcg 1
    scores = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    exclude = csr([(0, 0), (0, 1), (0, 2), (1, 0)], 2, 3)
    test = csr([(0, 1), (1, 1), (1, 2)], 2, 3)
    got = ranking_metrics(scores, exclude, test, ks=5)
    assert got["n_users_evaluated"] == 2
    assert got["precision@5"] == pytest.approx((0 + 2 / 5) / 2)
    assert got["recall@5"] == pytest.approx(0.5)
    assert got["ndcg@5"] == pytest.approx(0.5)
    assert got["hit@5"] == pytest.approx(0.5)


def test_an_excluded_test_item_counts_in_the_denominator_and_repeats_once():
    # test {0, 1, 1}: distinct {0, 1}; item 0 is excluded, item 1 is ranked first
    scores = np.array([[5.0, 4.0, 3.0]])
    got = ranking_metrics(scores, csr([(0, 0)], 1, 3), csr([(0, 0), (0, 1), (0, 1)], 1, 3), ks=1)
    assert got["recall@1"] == pytest.approx(0.5) and got["ndcg@1"] == pytest.approx(1.0)


def test_torch_and_numpy_scores_agree():
    scores, exclude, test = random_case(11, int_scores=False)
    want = ranking_metrics(scores, exclude, test, ks=(2, 5))
    got = ranking_metrics(torch.tensor(scores, dtype=torch.float64, requires_grad=True), exclude,
                          test, ks=[2, 5])
    assert got == want
    got32 = ranking_metrics(torch.tensor(scores, dtype=torch.float32), exclude, test, ks=(2, 5))
    assert got32 == ranking_metrics(scores.astype(np.float32), exclude, test, ks=(2, 5))
    ints = ranking_metrics(np.round(scores * 4).astype(np.int64), exclude, test, ks=(2, 5))
    assert ints == ranking_metrics(np.round(scores * 4), exclude, test, ks=(2, 5))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_raise(bad):
    scores, exclude, test = random_case(0)
    scores[4, 3] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        ranking_metrics(scores, exclude, test)


def test_scores_must_be_2d_real_numbers():
    scores, exclude, test = random_case(1)
    with pytest.raises(ValueError, match="scores must be 2-D"):
        ranking_metrics(scores[0], exclude, test)
    with pytest.raises(ValueError, match="scores must be real numbers"):
        ranking_metrics(scores.astype(np.complex128), exclude, test)


def test_exclude_and_test_must_be_user_item_csrs_of_the_scores_shape():
    scores, exclude, test = random_case(1)
    with pytest.raises(ValueError, match="exclude must be a UserItemCSR of shape"):
        ranking_metrics(scores, (exclude.indptr, exclude.indices), test)
    with pytest.raises(ValueError, match="test must be a UserItemCSR of shape"):
        ranking_metrics(scores[:, :-1], csr([], 23, 16), test)


@pytest.mark.parametrize("ks", [(), (0,), (2.0,), (-1, 3), "20"])
def test_bad_ks(ks):
    scores, exclude, test = random_case(1)
    with pytest.raises(ValueError, match="ks"):
        ranking_metrics(scores, exclude, test, ks=ks)


def test_no_evaluable_user_raises():
    empty = csr([], 3, 4)
    with pytest.raises(ValueError, match="no user has a test item"):
        ranking_metrics(np.ones((3, 4)), empty, empty)
