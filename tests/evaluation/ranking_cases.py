"""Inputs of the evaluation tests: a hand-computed example and random cases with awkward users
(no test item, every item or all but one excluded, test items also excluded, duplicates)."""
import math

import numpy as np
import torch

from gnn.data import UserItemCSR

L3 = 1.0 / math.log2(3)  # discount at rank 2 = 0.6309297535714575


def csr(pairs, n_users, n_items):
    """UserItemCSR of ``[(user, item), ...]`` (repeats allowed)."""
    users = [u for u, _ in pairs]
    items = [i for _, i in pairs]
    return UserItemCSR.from_pairs(np.array(users, dtype=np.int64), np.array(items, dtype=np.int64),
                                  n_users, n_items)


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
# MRR (1 / rank of the first hit): users 0 and 1 first hit at rank 2, user 3 at rank 1:
#   mrr@2 = mrr@3 = (1/2 + 1/2 + 1)/3 = 2/3
# MAP (precision at each hit's rank, summed, over min(K, |T_u|)):
#   user 0: one hit at rank 2 -> (1/2)/2 = 1/4;  user 1: (1/2)/1 = 1/2;  user 3: (1 + 1)/2 = 1
#   map@2 = map@3 = (1/4 + 1/2 + 1)/3 = 7/12
# coverage (items in any evaluated user's list, of 5): K=2 lists {1,2}, {1,2}, {0,3} -> 4/5;
#   K=3 lists {1,2,3}, {1,2,4}, {0,3} -> 5/5
HAND_SCORES = np.array([
    [0.9, 0.8, 0.7, 0.6, 0.5],
    [0.1, 0.5, 0.5, 0.2, 0.3],
    [0.0, 0.0, 0.0, 0.0, 0.0],
    [0.3, 0.1, 0.9, 0.2, 0.8],
])
HAND_TRAIN = csr([(0, 0), (2, 1), (3, 1), (3, 2), (3, 4)], 4, 5)
HAND_TEST = csr([(0, 2), (0, 4), (1, 2), (3, 0), (3, 3)], 4, 5)
HAND_EXPECTED = {
    "recall@2": 5 / 6, "precision@2": 2 / 3, "ndcg@2": 0.6725941869, "hit@2": 1.0,
    "mrr@2": 2 / 3, "map@2": 7 / 12,
    "recall@3": 5 / 6, "precision@3": 4 / 9, "ndcg@3": 0.6725941869, "hit@3": 1.0,
    "mrr@3": 2 / 3, "map@3": 7 / 12,
    "coverage@2": 0.8, "coverage@3": 1.0,
    "n_users_evaluated": 3,
}


def random_case(seed, n_users=23, n_items=17, int_scores=True):
    """``(scores, exclude, test)``: random scores (small integers: many ties) and UserItemCSRs
    where users have no test items, all items or all but one excluded, test items that are
    also excluded, and repeated test entries."""
    rng = np.random.default_rng(seed)
    if int_scores:
        scores = rng.integers(-3, 4, size=(n_users, n_items)).astype(np.float64)
    else:
        scores = rng.standard_normal((n_users, n_items))
    excluded, test = [], []
    for u in range(n_users):
        kind = u % 6
        n_excluded = {0: 0, 1: n_items - 1, 2: n_items}.get(kind, rng.integers(0, n_items // 2))
        excluded += [(u, i) for i in rng.choice(n_items, size=n_excluded, replace=False)]
        n_test = 0 if kind == 3 else rng.integers(1, n_items // 2)
        test += [(u, i) for i in rng.integers(0, n_items, size=n_test)]
    return scores, csr(excluded, n_users, n_items), csr(test, n_users, n_items)


def random_embedding_case(seed, n_users=40, n_items=29, d=3, ties=True):
    """``(user_emb, item_emb, {"train", "valid", "test"})``: float64 embeddings of small integers
    (ties common) or multiples of 1/4, so every dot product is exact whatever the matmul
    blocking; users with no test item, all items or all but one in training, overlaps."""
    rng = np.random.default_rng(seed)
    if ties:
        ue = torch.from_numpy(rng.integers(-2, 3, size=(n_users, d)).astype(np.float64))
        ie = torch.from_numpy(rng.integers(-2, 3, size=(n_items, d)).astype(np.float64))
    else:
        ue = torch.from_numpy(rng.integers(-400, 400, size=(n_users, d)) / 4.0)
        ie = torch.from_numpy(rng.integers(-400, 400, size=(n_items, d)) / 4.0)
    parts = {"train": [], "valid": [], "test": []}
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
            parts[name] += [(u, int(i)) for i in items]
    return ue, ie, {name: csr(pairs, n_users, n_items) for name, pairs in parts.items()}
