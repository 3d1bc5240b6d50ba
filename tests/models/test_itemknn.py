"""gnn.models.itemknn: sparse blockwise cosine vs a dense brute force, top-k truncation, scoring,
evaluation through the library's evaluator, and recommend (issue 8, defect 4)."""
import numpy as np
import pytest
import scipy.sparse as sp

from gnn import MF, UserItemCSR, build_adjacency
from gnn.evaluation.reference import ranking_metrics
from gnn.models import BASELINES, ItemKNN
from gnn.models.itemknn import cosine_topk


def random_interactions(n_users=40, n_items=30, density=0.15, seed=0):
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < density
    dense[:, -1] = False  # an item nobody interacted with
    u, i = np.nonzero(dense)
    return u, i, n_users, n_items


def dense_cosine(R: np.ndarray, shrink: float = 0.0) -> np.ndarray:
    """Brute force: S_ij = |U_i ∩ U_j| / (sqrt(d_i d_j) + shrink), diagonal 0."""
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


def split(u, i, n_u, n_i, seed):
    """(train, test) UserItemCSR of the pairs, about 20 % held out."""
    test = np.random.default_rng(seed).random(u.size) < 0.2
    return (UserItemCSR.from_pairs(u[~test], i[~test], n_u, n_i),
            UserItemCSR.from_pairs(u[test], i[test], n_u, n_i))


def test_registered_as_a_baseline():
    assert BASELINES["itemknn"] is ItemKNN


# -- the similarity --------------------------------------------------------------------------------
@pytest.mark.parametrize("block_size", [1, 7, 64])
@pytest.mark.parametrize("shrink", [0.0, 3.0])
def test_similarity_matches_dense_cosine(block_size, shrink):
    u, i, n_u, n_i = random_interactions()
    R = sp.csr_matrix((np.ones(u.size), (u, i)), shape=(n_u, n_i))
    S = cosine_topk(R, k=n_i, shrink=shrink, block_size=block_size)
    np.testing.assert_allclose(S.toarray(), dense_cosine(R.toarray(), shrink), rtol=1e-6, atol=1e-7)
    assert S.dtype == np.float32
    assert S[n_i - 1].nnz == 0  # the item without users has no neighbours
    assert np.all(S.diagonal() == 0)


def test_duplicates_and_weights_count_once():
    u, i, n_u, n_i = random_interactions(seed=1)
    R1 = sp.csr_matrix((np.ones(u.size), (u, i)), shape=(n_u, n_i))
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


# -- scores and evaluation -------------------------------------------------------------------------
def test_scores_are_R_times_S_transpose():
    u, i, n_u, n_i = random_interactions(seed=3)
    knn = ItemKNN(k=5).fit(UserItemCSR.from_pairs(u, i, n_u, n_i))
    R = np.zeros((n_u, n_i))
    R[u, i] = 1
    users = np.array([3, 0, 17])
    np.testing.assert_allclose(knn.score(users), (R @ dense_topk(dense_cosine(R), 5).T)[users],
                               rtol=1e-5, atol=1e-6)
    assert (knn.n_users, knn.n_items) == (n_u, n_i)
    assert "k=5" in repr(knn)


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_evaluation_matches_the_oracle(chunk):
    train, test = split(*random_interactions(n_users=50, n_items=40, density=0.25, seed=4), seed=4)
    knn = ItemKNN(k=10).fit(train)
    scores = knn.score(np.arange(train.n_users))
    expected = ranking_metrics(scores, train, test, ks=(5, 20))
    got = knn.evaluate(test, ks=(5, 20), chunk_size=chunk)
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key] == pytest.approx(expected[key], abs=1e-12), key


def test_evaluation_exclude_is_what_it_says():
    train, test = split(*random_interactions(n_users=50, n_items=40, density=0.25, seed=5), seed=5)
    knn = ItemKNN(k=10).fit(train)
    scores = knn.score(np.arange(train.n_users))
    nothing = UserItemCSR.from_pairs([], [], *train.shape)
    without = knn.evaluate(test, exclude=[], ks=(5,))
    assert without == pytest.approx(ranking_metrics(scores, nothing, test, ks=(5,)), abs=1e-12)
    # training items score high: ranking them lowers recall, so the two settings differ
    assert without["recall@5"] < knn.evaluate(test, ks=(5,))["recall@5"]


# -- recommend -------------------------------------------------------------------------------------
def test_recommend_never_returns_a_seen_item_even_past_the_unseen_ones():
    # Issue 8, defect 4: with k above the unseen count, training items filled the list.
    train, _ = split(*random_interactions(n_users=30, n_items=20, density=0.4, seed=6), seed=6)
    knn = ItemKNN(k=10).fit(train)
    top = knn.recommend(np.arange(train.n_users), k=train.n_items + 3)
    assert top.shape == (train.n_users, train.n_items + 3)
    scores = knn.score(np.arange(train.n_users))
    for u in range(train.n_users):
        seen = set(train.items_of(u).tolist())
        unseen = train.n_items - len(seen)
        assert not seen & set(top[u].tolist())
        assert (top[u, unseen:] == -1).all() and (top[u, :unseen] >= 0).all()
        want = sorted(set(range(train.n_items)) - seen, key=lambda i: (-scores[u, i], i))
        assert top[u, :unseen].tolist() == want


def test_recommend_default_k_is_the_graph_models():
    train, _ = split(*random_interactions(seed=7), seed=7)
    knn = ItemKNN(k=5).fit(train)
    graph_model = MF(build_adjacency(train), embedding_dim=2)
    assert knn.recommend([0, 1]).shape == tuple(graph_model.recommend([0, 1]).shape) == (2, 10)


def test_recommend_exclude_another_set():
    train, test = split(*random_interactions(n_users=30, n_items=20, density=0.4, seed=8), seed=8)
    seen = train.union(test)
    knn = ItemKNN(k=10).fit(train)
    top = knn.recommend(np.arange(train.n_users), k=train.n_items, exclude=seen)
    for u in range(train.n_users):
        assert not set(seen.items_of(u).tolist()) & set(top[u].tolist())
        assert (top[u] >= 0).sum() == train.n_items - seen.items_of(u).size


def test_recommend_bad_k():
    knn = ItemKNN(k=2).fit(UserItemCSR.from_pairs([0, 1], [0, 1], 2, 3))
    for k in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="k must be an int >= 1"):
            knn.recommend([0], k=k)


def test_recommend_exclude_of_another_shape():
    knn = ItemKNN(k=2).fit(UserItemCSR.from_pairs([0, 0, 1, 2], [0, 1, 1, 2], 3, 4))
    with pytest.raises(ValueError, match="exclude"):
        knn.recommend([0, 2], exclude=UserItemCSR.from_pairs([0], [0], 3, 3))


def test_recommend_exclude_of_the_wrong_type():
    knn = ItemKNN(k=2).fit(UserItemCSR.from_pairs([0, 0, 1, 2], [0, 1, 1, 2], 3, 4))
    with pytest.raises(TypeError, match="exclude"):
        knn.recommend([0], exclude=[1])


# -- bad input -------------------------------------------------------------------------------------
def test_bad_arguments():
    with pytest.raises(ValueError, match="k must be a positive int"):
        ItemKNN(k=0)
    with pytest.raises(ValueError, match="shrink"):
        ItemKNN(shrink=-1)
    with pytest.raises(RuntimeError, match="fit"):
        ItemKNN().score([0])
    with pytest.raises(TypeError, match="UserItemCSR"):
        ItemKNN().fit((np.array([0, 1]), np.array([1])))
    knn = ItemKNN(k=2).fit(UserItemCSR.from_pairs([0, 1, 1], [0, 1, 2], 3, 3))
    with pytest.raises(ValueError, match="users must lie"):
        knn.score([5])
    with pytest.raises(ValueError, match="no user to evaluate"):
        knn.evaluate(UserItemCSR.from_pairs([], [], 3, 3))
