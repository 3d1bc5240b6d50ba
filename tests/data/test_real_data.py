"""Counts on the real ml-latest-small and Gowalla copies under ``gnn.data.data_root()``
(``$GNN_DATA``); skipped when they are absent. Parse speed is measured in bench/, not here."""
import numpy as np

from gnn.data import load_dataset, load_interactions


def test_ml_latest_small_counts(dataset_file):
    root = dataset_file("ml-latest-small", "ratings.csv").parent.parent
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
    assert ds.seen_csr.nnz == 100_836 and ds.train_csr.nnz == len(ds.train[0])
    assert load_interactions("ml-latest-small", root=root, min_rating=4).n_users == 609


def test_gowalla_counts(dataset_file):
    root = dataset_file("gowalla", "train.txt").parent.parent
    dataset_file("gowalla", "test.txt")
    ds = load_dataset("gowalla", root=root, split="given")
    assert (ds.n_users, ds.n_items) == (29_858, 40_981)
    assert (len(ds.train[0]), len(ds.test[0])) == (810_128, 217_242)
    assert ds.valid is None and ds.protocol == "given"
    assert ds.user_ids[0] == 343 and ds.item_ids[0] == 8975  # from user_list.txt / item_list.txt


def test_datasets_are_found_through_the_data_root_only(monkeypatch, tmp_path):
    from gnn.data import find_dataset_file

    monkeypatch.setenv("GNN_DATA", str(tmp_path))
    assert find_dataset_file("ml-latest-small", "ratings.csv") is None
    (tmp_path / "ml-latest-small").mkdir()
    (tmp_path / "ml-latest-small" / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    assert find_dataset_file("ml-latest-small", "ratings.csv") == tmp_path / "ml-latest-small" / "ratings.csv"
    assert find_dataset_file("gowalla", root=tmp_path / "elsewhere") is None
