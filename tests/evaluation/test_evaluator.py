"""gnn.evaluation.evaluator: the chunked Evaluator and evaluate_ranking against the dense oracle
(gnn.evaluation.reference) and the brute force of tests/ranking_brute_force.py.

Embeddings are small integers (or multiples of 1/4) in float64 wherever exact agreement is
asserted: every dot product is then exact whatever the matmul blocking, so the evaluator, the
oracle and the brute force rank the very same numbers, ties included.
"""
import numpy as np
import pytest
import torch

from gnn import Evaluator, UserItemCSR, evaluate_ranking
from gnn.evaluation.reference import ranking_metrics
from ranking_brute_force import assert_metrics_close, brute_force_metrics, sets_of
from ranking_cases import (HAND_EXPECTED, HAND_SCORES, HAND_TEST, HAND_TRAIN, csr, random_case,
                           random_embedding_case)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def random_pairs(rng, n_users, n_items, n, n_user_ids=None):
    return UserItemCSR.from_pairs(rng.integers(0, n_user_ids or n_users, n),
                                  rng.integers(0, n_items, n), n_users, n_items)


def test_hand_computed_example():
    # user embeddings = the score rows, item embeddings = identity: scores are exactly HAND_SCORES
    ue, ie = torch.tensor(HAND_SCORES), torch.eye(5, dtype=torch.float64)
    for chunk in (1, 2, 100):
        got = evaluate_ranking(ue, ie, HAND_TEST, exclude=[HAND_TRAIN], ks=(2, 3), chunk_size=chunk)
        assert_metrics_close(got, HAND_EXPECTED, tol=1e-9)
        assert list(got) == list(HAND_EXPECTED)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_matches_oracle_and_brute_force(seed, ties, chunk):
    ue, ie, parts = random_embedding_case(seed, ties=ties)
    ks = (1, 2, 5, 29, 50)  # 29 = n_items, 50 > n_items
    got = evaluate_ranking(ue, ie, parts["test"], exclude=[parts["train"], parts["valid"]], ks=ks,
                           chunk_size=chunk)
    scores = (ue @ ie.T).numpy()
    excluded = parts["train"].union(parts["valid"])
    oracle = ranking_metrics(scores, excluded, parts["test"], ks=ks)
    brute = brute_force_metrics(scores, sets_of(excluded), sets_of(parts["test"]), ks)
    assert_metrics_close(oracle, brute)
    assert_metrics_close(got, oracle)


def test_all_scores_tied_ranks_by_item_id():
    # zero embeddings: every score ties, so the list is the lowest non-excluded item ids
    n_users, n_items = 9, 50
    rng = np.random.default_rng(3)
    train, test = random_pairs(rng, n_users, n_items, 100), random_pairs(rng, n_users, n_items, 60)
    ks = (1, 3, 10)
    got = evaluate_ranking(torch.zeros(n_users, 4), torch.zeros(n_items, 4), test, exclude=[train],
                           ks=ks, chunk_size=4)
    want = brute_force_metrics(np.zeros((n_users, n_items)), sets_of(train), sets_of(test), ks)
    assert_metrics_close(got, want)


@pytest.mark.parametrize("device", DEVICES)
def test_float32_continuous_scores(device):
    # a realistic-shaped case in float32 on each device: agreement with the oracle on the same
    # float32 scores (row blocking can change the last bit, so compare with a small tolerance)
    rng = np.random.default_rng(7)
    n_users, n_items, d = 300, 1500, 16
    ue = torch.randn(n_users, d, generator=torch.Generator().manual_seed(0)).to(device)
    ie = torch.randn(n_items, d, generator=torch.Generator().manual_seed(1)).to(device)
    train = random_pairs(rng, n_users, n_items, 20000)
    test = random_pairs(rng, n_users, n_items, 3000, n_user_ids=n_users - 20)
    ks = (10, 20, 50)
    got = evaluate_ranking(ue, ie, test, exclude=[train], ks=ks, chunk_size=128)
    want = ranking_metrics(ue.double() @ ie.double().T, train, test, ks=ks)
    assert got["n_users_evaluated"] == want["n_users_evaluated"] <= n_users - 20
    assert_metrics_close(got, want, tol=1e-3)


def test_users_subset():
    ue, ie, parts = random_embedding_case(5)
    users = np.array([0, 3, 3, 10, 17, 24, 39])  # 3, 10, 17 and 24 have no test item (u % 7 == 3)
    got = evaluate_ranking(ue, ie, parts["test"], exclude=[parts["train"]], ks=(3, 8),
                           users=torch.tensor(users), chunk_size=2)
    # the oracle on the same users: drop every other user's test items
    test_users, test_items = parts["test"].pairs()
    keep = np.isin(test_users, users)
    subset = UserItemCSR.from_pairs(test_users[keep], test_items[keep], *parts["test"].shape)
    want = ranking_metrics((ue @ ie.T).numpy(), parts["train"], subset, ks=(3, 8))
    assert want["n_users_evaluated"] == got["n_users_evaluated"] == 2
    assert_metrics_close(got, want)


def test_users_without_a_target_or_out_of_range():
    ue, ie, parts = random_embedding_case(5)
    with pytest.raises(ValueError, match="no user to evaluate"):
        evaluate_ranking(ue, ie, parts["test"], users=[3, 10])
    with pytest.raises(ValueError, match=r"users must lie in \[0, 40\)"):
        evaluate_ranking(ue, ie, parts["test"], users=[40])


def test_numpy_embeddings_and_a_single_exclusion_csr_agree():
    ue, ie, parts = random_embedding_case(8)
    want = evaluate_ranking(ue, ie, parts["test"], exclude=[parts["train"]], ks=(4,))
    assert evaluate_ranking(ue.numpy(), ie.numpy(), parts["test"], exclude=[parts["train"]], ks=[4]) == want
    assert evaluate_ranking(ue, ie, parts["test"], exclude=parts["train"], ks=4) == want


def test_target_with_unsorted_rows_and_repeats():
    # a target CSR given unsorted and with repeats counts each distinct item once in |T_u|
    ue, ie, parts = random_embedding_case(9)
    rows, items = parts["test"].pairs()
    dup = np.random.default_rng(0).random(items.size) < 0.5
    rows2, items2 = np.concatenate([rows, rows[dup]]), np.concatenate([items, items[dup]])
    order = np.lexsort((-items2, rows2))  # by user, items descending inside each row
    indptr = np.concatenate(([0], np.cumsum(np.bincount(rows2, minlength=parts["test"].n_users))))
    raw = UserItemCSR.from_csr(indptr, items2[order], *parts["test"].shape)
    want = evaluate_ranking(ue, ie, parts["test"], exclude=[parts["train"]], ks=(2, 6))
    assert_metrics_close(evaluate_ranking(ue, ie, raw, exclude=[parts["train"]], ks=(2, 6),
                                          chunk_size=5), want)


# -- the Evaluator object --------------------------------------------------------------------------
def test_an_evaluator_built_once_serves_many_models():
    ue, ie, parts = random_embedding_case(12, ties=False)
    exclude = [parts["train"], parts["valid"]]
    evaluator = Evaluator(parts["test"], exclude, ks=(1, 5, 20), chunk_size=6)
    assert evaluator.n_users_evaluated == evaluate_ranking(ue, ie, parts["test"])["n_users_evaluated"]
    results = []
    for step in range(4):  # several "epochs" of one model: the same evaluator each time
        u, i = ue + step * 0.25 * ue.roll(1, 0), ie - step * 0.5 * ie.roll(2, 1)
        got = evaluator(u, i)
        assert got == evaluator.evaluate(u, i)
        assert_metrics_close(got, evaluate_ranking(u, i, parts["test"], exclude=exclude,
                                                   ks=(1, 5, 20), chunk_size=6))
        assert_metrics_close(got, ranking_metrics((u @ i.T).numpy(), parts["train"].union(parts["valid"]),
                                                  parts["test"], ks=(1, 5, 20)))
        results.append(got)
    assert len({r["ndcg@20"] for r in results}) > 1  # the embeddings differ: so do the metrics


def test_evaluate_scores_with_a_score_function_equals_the_embedding_path():
    g = torch.Generator().manual_seed(11)
    n_users, n_items = 23, 31
    user_emb = torch.randn(n_users, 5, generator=g, dtype=torch.float64)
    item_emb = torch.randn(n_items, 5, generator=g, dtype=torch.float64)
    rng = np.random.default_rng(3)
    train, test = random_pairs(rng, n_users, n_items, 80), random_pairs(rng, n_users, n_items, 40)
    expected = evaluate_ranking(user_emb, item_emb, test, exclude=[train], ks=(3, 10), chunk_size=4)
    evaluator = Evaluator(test, [train], ks=(3, 10), chunk_size=4)
    calls = []

    def numpy_scores(users):
        calls.append(users.numel())
        return (user_emb[users] @ item_emb.T).numpy()  # numpy output is accepted

    assert evaluator.evaluate_scores(numpy_scores) == expected
    assert max(calls) <= 4 and sum(calls) == expected["n_users_evaluated"]
    assert evaluator.evaluate_scores(lambda users: user_emb[users] @ item_emb.T) == expected


def test_evaluate_scores_block_of_the_wrong_shape():
    scores, exclude, test = random_case(2)
    evaluator = Evaluator(test, [exclude])
    with pytest.raises(ValueError, match="must have shape"):
        evaluator.evaluate_scores(lambda u: torch.zeros(u.numel(), scores.shape[1] - 1))


def test_evaluate_scores_integer_scores():
    scores, exclude, test = random_case(3)
    evaluator = Evaluator(test, [exclude], ks=(3,))
    got = evaluator.evaluate_scores(lambda u: torch.from_numpy(scores.astype(np.int64))[u])
    assert_metrics_close(got, ranking_metrics(scores, exclude, test, ks=(3,)))


def test_memory_is_chunked(monkeypatch):
    # every score block has at most chunk_size rows: record the shapes matmul produces
    ue, ie, parts = random_embedding_case(6, n_users=40)
    shapes = []
    real_matmul = torch.Tensor.__matmul__

    def spy(a, b):
        out = real_matmul(a, b)
        shapes.append(tuple(out.shape))
        return out

    monkeypatch.setattr(torch.Tensor, "__matmul__", spy)
    evaluate_ranking(ue, ie, parts["test"], exclude=[parts["train"]], chunk_size=6)
    monkeypatch.undo()
    blocks = [shape for shape in shapes if len(shape) == 2]  # score blocks (B, n_items)
    assert blocks and all(rows <= 6 and cols == ie.shape[0] for rows, cols in blocks)


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_scores_raise(bad):
    ue, ie, parts = random_embedding_case(2)
    ie[5, 1] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        evaluate_ranking(ue, ie, parts["test"], exclude=[parts["train"]])


def test_embedding_sizes_differ():
    ue, ie, parts = random_embedding_case(4)
    with pytest.raises(ValueError, match="one embedding size"):
        evaluate_ranking(ue, ie[:, :2], parts["test"])


def test_embedding_dtypes_differ_or_are_not_floating():
    ue, ie, parts = random_embedding_case(4)
    with pytest.raises(ValueError, match="floating dtype"):
        evaluate_ranking(ue, ie.float(), parts["test"])
    with pytest.raises(ValueError, match="floating dtype"):
        evaluate_ranking(ue.long(), ie.long(), parts["test"])


def test_embedding_counts_disagree_with_the_target():
    ue, ie, parts = random_embedding_case(4)
    with pytest.raises(ValueError, match="expected 40 user and 29 item embeddings"):
        evaluate_ranking(ue[:-1], ie, parts["test"])


def test_embeddings_on_different_devices():
    ue, ie, parts = random_embedding_case(4)
    with pytest.raises(ValueError, match="same device"):
        evaluate_ranking(ue.to("meta"), ie, parts["test"])


def test_target_and_exclusions_must_be_user_item_csrs_of_one_shape():
    ue, ie, parts = random_embedding_case(4)
    with pytest.raises(TypeError, match="target must be a gnn.data.UserItemCSR"):
        evaluate_ranking(ue, ie, parts["test"].pairs())
    other = csr([(0, 0)], 40, 30)
    with pytest.raises(ValueError, match=r"exclude\[1\] must be a UserItemCSR of shape \(40, 29\)"):
        evaluate_ranking(ue, ie, parts["test"], exclude=[parts["train"], other])
    with pytest.raises(ValueError, match=r"exclude\[0\]"):
        evaluate_ranking(ue, ie, parts["test"], exclude=[parts["train"].pairs()])


def test_bad_chunk_size_and_ks():
    ue, ie, parts = random_embedding_case(4)
    for chunk in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="chunk_size"):
            evaluate_ranking(ue, ie, parts["test"], chunk_size=chunk)
    with pytest.raises(ValueError, match="ks"):
        evaluate_ranking(ue, ie, parts["test"], ks=(0,))


def test_nothing_to_evaluate():
    ue, ie, _ = random_embedding_case(4)
    with pytest.raises(ValueError, match="no user to evaluate"):
        evaluate_ranking(ue, ie, csr([], 40, 29))
