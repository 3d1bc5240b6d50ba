"""ItemKNN: sparse blockwise cosine vs a dense brute force, top-k truncation, scoring, exclusion."""
import numpy as np
import pytest
import scipy.sparse as sp

from gnn.csr import csr_from_pairs
from gnn.itemknn import ItemKNN, cosine_topk, evaluate_scorer
from gnn.metrics import ranking_metrics


def random_interactions(n_users=40, n_items=30, density=0.15, seed=0):
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < density
    dense[:, -1] = False  # an item nobody interacted with
    u, i = np.nonzero(dense)
    return u, i, n_users, n_items


def dense_cosine(R: np.ndarray, shrink: float = 0.0) -> np.ndarray:
    """Brute force, tests only: S_ij = |U_i ∩ U_j| / (sqrt(d_i d_j) + shrink), diagonal 0."""
    R = (R > 0).astype(np.float64)
    co = R.T @ R
    d = R.sum(axis=0)
    denom = np.sqrt(np.outer(d, d)) + shrink
    S = np.divide(co, denom, out=np.zeros_like(co), where=denom > 0)
    np.fill_diagonal(S, 0.0)
    return S


def dense_topk(S: np.ndarray, k: int) -> np.ndarray:
    """Keep the k largest positive entries per row (ties: smaller column first)."""
    out = np.zeros_like(S)
    for j in range(S.shape[0]):
        order = np.lexsort((np.arange(S.shape[1]), -S[j]))
        keep = [c for c in order if S[j, c] > 0][:k]
        out[j, keep] = S[j, keep]
    return out


@pytest.mark.parametrize("block_size", [1, 7, 64])
@pytest.mark.parametrize("shrink", [0.0, 3.0])
def test_similarity_matches_dense_cosine(block_size, shrink):
    u, i, n_u, n_i = random_interactions()
    R = sp.csr_matrix((np.ones(u.size), (u, i)), shape=(n_u, n_i))
    S = cosine_topk(R, k=n_i, shrink=shrink, block_size=block_size)
    expected = dense_cosine(R.toarray(), shrink)
    np.testing.assert_allclose(S.toarray(), expected, rtol=1e-6, atol=1e-7)
    assert S.dtype == np.float32
    assert S[n_i - 1].nnz == 0  # the item without users has no neighbours
    assert np.all(S.diagonal() == 0)


def test_duplicates_and_weights_count_once():
    u, i, n_u, n_i = random_interactions(seed=1)
    R1 = sp.csr_matrix((np.ones(u.size), (u, i)), shape=(n_u, n_i))
    # every pair twice, with arbitrary positive weights: still one interaction
    R2 = sp.coo_matrix((np.r_[np.full(u.size, 5.0), np.ones(u.size)], (np.r_[u, u], np.r_[i, i])),
                       shape=(n_u, n_i))
    np.testing.assert_array_equal(cosine_topk(R1, 10).toarray(), cosine_topk(R2, 10).toarray())


@pytest.mark.parametrize("k", [1, 3, 8])
def test_topk_truncation(k):
    u, i, n_u, n_i = random_interactions(n_users=60, n_items=25, density=0.3, seed=2)
    R = sp.csr_matrix((np.ones(u.size), (u, i)), shape=(n_u, n_i))
    S = cosine_topk(R, k=k, block_size=4)
    assert np.diff(S.indptr).max() <= k
    np.testing.assert_allclose(S.toarray(), dense_topk(dense_cosine(R.toarray()), k), rtol=1e-6)


def test_topk_ties_keep_smaller_item_ids():
    # items 1, 2, 3 have identical users, so item 0 ties with all three
    R = sp.csr_matrix(np.array([[1, 1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 1]], dtype=np.float32))
    S = cosine_topk(R, k=2)
    assert S[0].indices.tolist() == [1, 2]
    assert S[3].indices.tolist() == [1, 2]


def test_scores_are_R_times_S_transpose():
    u, i, n_u, n_i = random_interactions(seed=3)
    knn = ItemKNN(k=5).fit(*csr_from_pairs(u, i, n_u), n_i)
    R = np.zeros((n_u, n_i))
    R[u, i] = 1
    S = dense_topk(dense_cosine(R), 5)
    users = np.array([3, 0, 17])
    np.testing.assert_allclose(knn.score(users), (R @ S.T)[users], rtol=1e-5, atol=1e-6)
    assert "k=5" in repr(knn)


def test_evaluation_excludes_training_items_and_matches_oracle():
    u, i, n_u, n_i = random_interactions(n_users=50, n_items=40, density=0.25, seed=4)
    rng = np.random.default_rng(4)
    test = rng.random(u.size) < 0.2
    train_csr = csr_from_pairs(u[~test], i[~test], n_u)
    test_csr = csr_from_pairs(u[test], i[test], n_u)
    knn = ItemKNN(k=10).fit(*train_csr, n_i)
    scores = knn.score(np.arange(n_u))
    expected = ranking_metrics(scores, *train_csr, *test_csr, ks=(5, 20))
    for chunk in (1, 7, 1000):
        got = knn.evaluate(*test_csr, ks=(5, 20), chunk_size=chunk)
        assert got.keys() == expected.keys()
        for key in expected:
            assert got[key] == pytest.approx(expected[key], abs=1e-12)
    # a training item is never recommended, even though its score is the highest
    recs = knn.recommend(np.arange(n_u), k=n_i)
    tr_ptr, tr_idx = train_csr
    for user in range(n_u):
        seen = set(tr_idx[tr_ptr[user]:tr_ptr[user + 1]].tolist())
        top = recs[user, :n_i - len(seen)].tolist()
        assert not seen & set(top)


def test_exclusion_changes_the_metrics_as_it_should():
    # one user: trained on item 0; item 0 would rank first but is excluded, so item 1 is hit first
    n_u, n_i = 1, 4
    score = lambda users: np.array([[9.0, 5.0, 1.0, 0.0]])[: len(users)]
    test = (np.array([0, 1]), np.array([1]))
    excluded = (np.array([0, 1]), np.array([0]))
    with_excl = evaluate_scorer(score, n_u, n_i, *test, exclude=[excluded], ks=(1,))
    without = evaluate_scorer(score, n_u, n_i, *test, exclude=[], ks=(1,))
    assert with_excl["recall@1"] == 1.0 and with_excl["ndcg@1"] == 1.0
    assert without["recall@1"] == 0.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="k must be a positive int"):
        ItemKNN(k=0)
    with pytest.raises(ValueError, match="shrink"):
        ItemKNN(shrink=-1)
    with pytest.raises(RuntimeError, match="fit"):
        ItemKNN().score([0])
    knn = ItemKNN(k=2).fit(np.array([0, 2, 3]), np.array([0, 1, 1]), 3)
    with pytest.raises(ValueError, match="users must lie"):
        knn.score([5])
    with pytest.raises(ValueError, match="no user to evaluate"):
        knn.evaluate(np.zeros(3, dtype=np.int64), np.zeros(0, dtype=np.int64))
    with pytest.raises(ValueError, match="train indices"):
        ItemKNN().fit(np.array([0, 1]), np.array([7]), 3)
