"""Tests of the chunked evaluator gnn.evaluate.evaluate_ranking against the oracle
(gnn.metrics.ranking_metrics) and the brute-force reference of test_metrics.py.

Embeddings are small integers (or multiples of 1/4) in float64 wherever exact agreement is
asserted: every dot product is then exact whatever the matmul blocking, so the evaluator, the
oracle and the brute force rank the very same numbers, ties included.
"""
import numpy as np
import pytest
import torch

from gnn.csr import csr_from_pairs
from gnn.evaluate import evaluate_ranking, evaluate_scores
from gnn.metrics import ranking_metrics
from test_metrics import (HAND_EXPECTED, HAND_SCORES, HAND_TEST, HAND_TRAIN, assert_metrics_close,
                          brute_force_metrics, sets_from_csr)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def random_embedding_case(seed, n_users=40, n_items=29, d=3, ties=True):
    """Integer-valued embeddings (ties are common) and train / valid / test CSRs with users that
    have no test items, all items but one or all items excluded, and train/test overlap."""
    rng = np.random.default_rng(seed)
    if ties:
        ue = torch.from_numpy(rng.integers(-2, 3, size=(n_users, d)).astype(np.float64))
        ie = torch.from_numpy(rng.integers(-2, 3, size=(n_items, d)).astype(np.float64))
    else:
        ue = torch.from_numpy(rng.integers(-400, 400, size=(n_users, d)) / 4.0)
        ie = torch.from_numpy(rng.integers(-400, 400, size=(n_items, d)) / 4.0)
    pairs = {"train": ([], []), "valid": ([], []), "test": ([], [])}
    for u in range(n_users):
        kind = u % 7
        if kind == 1:
            train = rng.permutation(n_items)[: n_items - 1]
        elif kind == 2:
            train = np.arange(n_items)
        else:
            train = rng.choice(n_items, size=rng.integers(0, n_items // 2), replace=False)
        valid = rng.choice(n_items, size=rng.integers(0, 3), replace=False)
        test = [] if kind == 3 else rng.integers(0, n_items, size=rng.integers(1, 8))
        for name, items in (("train", train), ("valid", valid), ("test", test)):
            pairs[name][0].extend([u] * len(items))
            pairs[name][1].extend(list(items))
    csr = {name: csr_from_pairs(np.array(us, dtype=np.int64), np.array(its, dtype=np.int64), n_users)
           for name, (us, its) in pairs.items()}
    return ue, ie, csr


def merged(*csrs):
    """Union of CSRs (what the oracle gets as its single exclusion CSR)."""
    n_users = len(csrs[0][0]) - 1
    users = np.concatenate([np.repeat(np.arange(n_users), np.diff(p)) for p, _ in csrs])
    items = np.concatenate([i for _, i in csrs])
    return csr_from_pairs(users, items, n_users)


def test_hand_computed_example():
    # user embeddings = the score rows, item embeddings = identity: scores are exactly HAND_SCORES
    ue = torch.tensor(HAND_SCORES)
    ie = torch.eye(5, dtype=torch.float64)
    for chunk in (1, 2, 100):
        got = evaluate_ranking(ue, ie, *HAND_TEST, exclude=[HAND_TRAIN], ks=(2, 3), chunk_size=chunk)
        assert_metrics_close(got, HAND_EXPECTED, tol=1e-9)
    assert list(got) == list(HAND_EXPECTED)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_matches_oracle_and_brute_force(seed, ties, chunk):
    ue, ie, csr = random_embedding_case(seed, ties=ties)
    ks = (1, 2, 5, 29, 50)  # 29 = n_items, 50 > n_items
    excl = merged(csr["train"], csr["valid"])
    got = evaluate_ranking(ue, ie, *csr["test"], exclude=[csr["train"], csr["valid"]], ks=ks,
                           chunk_size=chunk)
    scores = (ue @ ie.T).numpy()
    oracle = ranking_metrics(scores, *excl, *csr["test"], ks=ks)
    brute = brute_force_metrics(scores, sets_from_csr(*excl), sets_from_csr(*csr["test"]), ks)
    assert_metrics_close(oracle, brute)
    assert_metrics_close(got, oracle)


def test_all_scores_tied_ranks_by_item_id():
    # zero embeddings: every score ties, so the list is the lowest non-excluded item ids
    n_users, n_items = 9, 50
    ue, ie = torch.zeros(n_users, 4), torch.zeros(n_items, 4)
    rng = np.random.default_rng(3)
    train = csr_from_pairs(rng.integers(0, n_users, 100), rng.integers(0, n_items, 100), n_users)
    test = csr_from_pairs(rng.integers(0, n_users, 60), rng.integers(0, n_items, 60), n_users)
    ks = (1, 3, 10)
    got = evaluate_ranking(ue, ie, *test, exclude=[train], ks=ks, chunk_size=4)
    want = brute_force_metrics(np.zeros((n_users, n_items)), sets_from_csr(*train),
                               sets_from_csr(*test), ks)
    assert_metrics_close(got, want)


@pytest.mark.parametrize("device", DEVICES)
def test_float32_continuous_scores(device):
    # a realistic-shaped case in float32 on each device: agreement with the oracle on the same
    # float32 scores (row blocking can change the last bit, so compare with a small tolerance)
    rng = np.random.default_rng(7)
    n_users, n_items, d = 300, 1500, 16
    ue = torch.randn(n_users, d, generator=torch.Generator().manual_seed(0)).to(device)
    ie = torch.randn(n_items, d, generator=torch.Generator().manual_seed(1)).to(device)
    train = csr_from_pairs(rng.integers(0, n_users, 20000), rng.integers(0, n_items, 20000), n_users)
    test = csr_from_pairs(rng.integers(0, n_users - 20, 3000), rng.integers(0, n_items, 3000), n_users)
    ks = (10, 20, 50)
    got = evaluate_ranking(ue, ie, torch.from_numpy(test[0]).to(device), torch.from_numpy(test[1]).to(device),
                           exclude=[train], ks=ks, chunk_size=128)
    want = ranking_metrics(ue.double() @ ie.double().T, *train, *test, ks=ks)
    assert got["n_users_evaluated"] == want["n_users_evaluated"] <= n_users - 20
    assert_metrics_close(got, want, tol=1e-3)


def test_users_subset():
    ue, ie, csr = random_embedding_case(5)
    users = np.array([0, 3, 3, 10, 17, 24, 39])  # 3, 10, 17 and 24 have no test item (u % 7 == 3)
    got = evaluate_ranking(ue, ie, *csr["test"], exclude=[csr["train"]], ks=(3, 8),
                           users=torch.tensor(users), chunk_size=2)
    # oracle on the same users: drop every other user's test items
    tp, ti = csr["test"]
    keep = np.zeros(len(tp) - 1, dtype=bool); keep[users] = True
    rows = np.repeat(np.arange(len(tp) - 1), np.diff(tp))
    sub = csr_from_pairs(rows[keep[rows]], ti[keep[rows]], len(tp) - 1)
    want = ranking_metrics((ue @ ie.T).numpy(), *csr["train"], *sub, ks=(3, 8))
    assert want["n_users_evaluated"] == 2
    assert_metrics_close(got, want)
    with pytest.raises(ValueError, match="no user to evaluate"):
        evaluate_ranking(ue, ie, *csr["test"], users=[3, 10])
    with pytest.raises(ValueError, match="users must lie in"):
        evaluate_ranking(ue, ie, *csr["test"], users=[40])


def test_torch_numpy_and_int32_csr_agree():
    ue, ie, csr = random_embedding_case(8)
    want = evaluate_ranking(ue, ie, *csr["test"], exclude=[csr["train"]], ks=(4,))
    t32 = lambda a: torch.from_numpy(a).to(torch.int32)
    got = evaluate_ranking(ue, ie, t32(csr["test"][0]), t32(csr["test"][1]),
                           exclude=((t32(csr["train"][0]), csr["train"][1]),), ks=4)
    assert got == want
    got_np = evaluate_ranking(ue.numpy(), ie.numpy(), *csr["test"], exclude=[csr["train"]], ks=[4])
    assert got_np == want


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_scores_raise(bad):
    ue, ie, csr = random_embedding_case(2)
    ie[5, 1] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        evaluate_ranking(ue, ie, *csr["test"], exclude=[csr["train"]])


def test_validation_errors():
    ue, ie, csr = random_embedding_case(4)
    tp, ti = csr["test"]
    with pytest.raises(ValueError, match="share the embedding size"):
        evaluate_ranking(ue, ie[:, :2], tp, ti)
    with pytest.raises(ValueError, match="floating dtype"):
        evaluate_ranking(ue, ie.float(), tp, ti)
    with pytest.raises(ValueError, match="test indptr must have length"):
        evaluate_ranking(ue[:-1], ie, tp, ti)
    with pytest.raises(ValueError, match=r"exclude\[1\] indices must lie in"):
        evaluate_ranking(ue, ie, tp, ti, exclude=[csr["train"], (csr["valid"][0], csr["valid"][1] + 100)])
    with pytest.raises(ValueError, match="wrap a single pair"):
        evaluate_ranking(ue, ie, tp, ti, exclude=csr["train"])
    with pytest.raises(ValueError, match="chunk_size"):
        evaluate_ranking(ue, ie, tp, ti, chunk_size=0)
    with pytest.raises(ValueError, match="ks"):
        evaluate_ranking(ue, ie, tp, ti, ks=(0,))
    empty = (np.zeros(len(tp), dtype=np.int64), np.zeros(0, dtype=np.int64))
    with pytest.raises(ValueError, match="no user to evaluate"):
        evaluate_ranking(ue, ie, *empty)


def test_memory_is_chunked(monkeypatch):
    # every score block has at most chunk_size rows: record the shapes matmul produces
    ue, ie, csr = random_embedding_case(6, n_users=40)
    shapes = []
    real_matmul = torch.Tensor.__matmul__

    def spy(a, b):
        out = real_matmul(a, b)
        shapes.append(tuple(out.shape))
        return out

    monkeypatch.setattr(torch.Tensor, "__matmul__", spy)
    evaluate_ranking(ue, ie, *csr["test"], exclude=[csr["train"]], chunk_size=6)
    monkeypatch.undo()
    blocks = [shape for shape in shapes if len(shape) == 2]  # score blocks (B, n_items)
    assert blocks and all(rows <= 6 and cols == ie.shape[0] for rows, cols in blocks)


def test_raw_csr_with_duplicates_and_unsorted_rows():
    # test rows given unsorted and with repeats count each distinct item once in |T_u|
    ue, ie, csr = random_embedding_case(9)
    tp, ti = csr["test"]
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(len(tp) - 1), np.diff(tp))
    dup = rng.random(ti.size) < 0.5
    rows2, items2 = np.concatenate([rows, rows[dup]]), np.concatenate([ti, ti[dup]])
    order = np.lexsort((-items2, rows2))  # by user, items descending inside each row
    raw = (np.concatenate(([0], np.cumsum(np.bincount(rows2, minlength=len(tp) - 1)))), items2[order])
    assert raw[1].size > ti.size
    want = evaluate_ranking(ue, ie, tp, ti, exclude=[csr["train"]], ks=(2, 6))
    got = evaluate_ranking(ue, ie, *raw, exclude=[csr["train"]], ks=(2, 6), chunk_size=5)
    assert_metrics_close(got, want)
    assert_metrics_close(ranking_metrics((ue @ ie.T).numpy(), *csr["train"], *raw, ks=(2, 6)), want)


def test_evaluate_scores_with_a_score_function_equals_the_embedding_path():
    g = torch.Generator().manual_seed(11)
    n_users, n_items = 23, 31
    user_emb = torch.randn(n_users, 5, generator=g, dtype=torch.float64)
    item_emb = torch.randn(n_items, 5, generator=g, dtype=torch.float64)
    rng = np.random.default_rng(3)
    train = csr_from_pairs(rng.integers(0, n_users, 80), rng.integers(0, n_items, 80), n_users)
    test = csr_from_pairs(rng.integers(0, n_users, 40), rng.integers(0, n_items, 40), n_users)
    expected = evaluate_ranking(user_emb, item_emb, *test, exclude=[train], ks=(3, 10), chunk_size=4)
    calls = []

    def score_fn(users):
        calls.append(users.numel())
        return (user_emb[users] @ item_emb.T).numpy()  # numpy output is accepted

    got = evaluate_scores(score_fn, n_users, n_items, *test, exclude=[train], ks=(3, 10), chunk_size=4)
    assert got == expected
    assert max(calls) <= 4
    with pytest.raises(ValueError, match="must have shape"):
        evaluate_scores(lambda u: torch.zeros(u.numel(), n_items - 1), n_users, n_items, *test)
