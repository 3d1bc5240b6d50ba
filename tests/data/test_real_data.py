"""Counts on the real ml-latest-small and Gowalla copies (skipped when they are absent)."""
import time

import numpy as np

from conftest import require_real_file
from gnn.data import load_dataset, load_interactions
from gnn.data.movielens import read_ratings


def test_ml_latest_small_counts():
    ratings = require_real_file("ml-latest-small", "ratings.csv")
    root = ratings.parent.parent
    inter = load_interactions("ml-latest-small", root=root, download=False)
    assert (len(inter), inter.n_users, inter.n_items) == (100_836, 610, 9_724)
    assert inter.rating.min() == 0.5 and inter.rating.max() == 5.0
    assert inter.title(int(inter.item_index([1])[0])) == "Toy Story (1995)"
    assert len(inter.item_titles) == 9_724 and all(inter.item_titles)
    assert inter.user_ids[inter.user_index([610])[0]] == 610
    ds = load_dataset("ml-latest-small", root=root, download=False, seed=0)
    parts = [ds.train, ds.valid, ds.test]
    assert sum(len(p[0]) for p in parts) == 100_836
    keys = np.concatenate([p[0] * ds.n_items + p[1] for p in parts])
    assert len(np.unique(keys)) == 100_836
    assert load_interactions("ml-latest-small", root=root, min_rating=4).n_users == 609


def test_ml_latest_small_parses_fast():
    ratings = require_real_file("ml-latest-small", "ratings.csv")
    best = min(_timed(lambda: read_ratings(ratings)) for _ in range(3))
    assert best < 0.5, f"parsing ratings.csv took {best:.3f} s"


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def test_gowalla_counts():
    train = require_real_file("gowalla", "train.txt")
    require_real_file("gowalla", "test.txt")
    ds = load_dataset("gowalla", root=train.parent.parent, split="given")
    assert (ds.n_users, ds.n_items) == (29_858, 40_981)
    assert (len(ds.train[0]), len(ds.test[0])) == (810_128, 217_242)
    assert ds.valid is None and ds.protocol == "given"
    assert ds.user_ids[0] == 343 and ds.item_ids[0] == 8975  # from user_list.txt / item_list.txt
