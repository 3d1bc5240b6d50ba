"""The NGCF/LightGCN train.txt/test.txt format and what load_dataset does with it."""
import numpy as np
import pytest

from gnn.data import DatasetFormatError, DatasetNotFoundError, load_dataset, load_interactions


def make(folder, train="0 0 1 2\n1 3\n2\n3 1 4 0 2\n", test="0 3\n1 5\n2 0\n3\n"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.txt").write_text(train)
    (folder / "test.txt").write_text(test)
    return folder


def pairs(p):
    return list(zip(p[0].tolist(), p[1].tolist()))


def test_given_split_as_is(tmp_path):
    ds = load_dataset(make(tmp_path / "g"), split="given")
    assert ds.protocol == "given" and ds.valid is None
    assert ds.n_users == 4 and ds.n_items == 6  # max id + 1 over both files
    assert pairs(ds.train) == [(0, 0), (0, 1), (0, 2), (1, 3), (3, 1), (3, 4), (3, 0), (3, 2)]
    assert pairs(ds.test) == [(0, 3), (1, 5), (2, 0)]
    assert ds.user_ids.tolist() == [0, 1, 2, 3] and ds.train[0].dtype == np.int64


def test_user_only_lines_count_users(tmp_path):
    ds = load_dataset(make(tmp_path / "g", train="0 1\n7\n", test="0 2\n"), split="given")
    assert ds.n_users == 8 and ds.n_items == 3


def test_original_id_lists(tmp_path):
    folder = make(tmp_path / "g")
    (folder / "user_list.txt").write_text("org_id remap_id\n343 0\n5258 1\n11 2\n9 3\n")
    (folder / "item_list.txt").write_text("org_id remap_id freebase_id\n" +
                                          "".join(f"B00{k} {k} m.x\n" for k in range(6)))
    ds = load_dataset(folder, split="given")
    assert ds.user_ids.tolist() == [343, 5258, 11, 9] and ds.item_ids[5] == "B005"
    assert ds.user_index([9, 343]).tolist() == [3, 0] and ds.item_index(["B003"]).tolist() == [3]
    (folder / "user_list.txt").write_text("org_id remap_id\n343 0\n")
    with pytest.raises(DatasetFormatError, match="no original id listed for remapped id 1"):
        load_dataset(folder, split="given")


def test_validation_carved_from_train(tmp_path):
    train = "".join(f"{u} " + " ".join(str(i) for i in range(u, u + 10)) + "\n" for u in range(50))
    folder = make(tmp_path / "g", train=train, test="".join(f"{u} {u + 20}\n" for u in range(50)))
    given = load_dataset(folder, split="given")
    for split, n_valid in (("random", 50), ("loo", 50)):
        ds = load_dataset(folder, split=split, ratios=(0.8, 0.1, 0.1), seed=3)
        assert ds.protocol == "given" and len(ds.valid[0]) == n_valid and "valid" in ds.notes
        assert pairs(ds.test) == pairs(given.test)  # the test part stays test.txt
        merged = sorted(pairs(ds.train) + pairs(ds.valid))
        assert merged == sorted(pairs(given.train)) and not set(pairs(ds.train)) & set(pairs(ds.valid))
    assert load_dataset(folder, split="random", ratios=(0.9, 0.0, 0.1)).valid is None
    with pytest.raises(ValueError, match="timestamps"):
        load_dataset(folder, split="temporal")
    with pytest.raises(ValueError, match="min_rating"):
        load_dataset(folder, split="given", min_rating=4)


def test_union_as_interactions(tmp_path):
    inter = load_interactions(make(tmp_path / "g", train="0 1 2\n", test="0 2 3\n"))
    assert pairs((inter.user, inter.item)) == [(0, 1), (0, 2), (0, 3)] and inter.n_items == 4


@pytest.mark.parametrize("train, test, fragment", [
    ("", "0 1\n", "train.txt: the file is empty"),
    ("0 1\n1 2 x\n", "0 1\n", "train.txt, line 2"),
    ("0 1\n", "0 1.5\n", "test.txt, line 1"),
    ("0 1\n", "0 -1\n", "test.txt, line 1"),
])
def test_malformed_text_files(tmp_path, train, test, fragment):
    with pytest.raises(DatasetFormatError, match=fragment.replace(".", r"\.")):
        load_dataset(make(tmp_path / "g", train, test), split="given")


def test_named_text_dataset_missing_says_where_to_put_files(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("gowalla", root=tmp_path)
    msg = str(e.value)
    assert "github.com/kuandeng/LightGCN" in msg and str(tmp_path / "gowalla") in msg
    make(tmp_path / "yelp2018")
    assert load_dataset("yelp2018", root=tmp_path).protocol == "given"
