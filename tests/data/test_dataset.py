"""Id remapping, original-id look-ups, duplicate collapsing, min_rating."""
import numpy as np
import pytest

from gnn.data import Interactions, collapse_duplicates, data_root, load_interactions, remap_ids


@pytest.mark.parametrize("ids", [
    np.array([7, 3, 7, 1000, 3]),
    np.array([10 ** 15, 5, 10 ** 15]),       # too sparse for the presence table
    np.array(["b", "a", "b"]),                 # any sortable ids
])
def test_remap_round_trip(ids):
    index, uniques = remap_ids(ids)
    assert (uniques[index] == ids).all()
    assert (np.sort(uniques) == uniques).all() and len(uniques) == len(set(ids.tolist()))
    assert index.dtype == np.int64 and index.min() == 0 and index.max() == len(uniques) - 1


def _inter(user_ids, item_ids):
    return Interactions(name="t", n_users=len(user_ids), n_items=len(item_ids), user=np.zeros(0, np.int64),
                        item=np.zeros(0, np.int64), rating=None, timestamp=None,
                        user_ids=np.asarray(user_ids), item_ids=np.asarray(item_ids))


def test_original_id_lookups():
    inter = _inter([3, 10, 42], [100, 7, 55])  # item ids unsorted, as a given split's list may be
    assert inter.user_index([42, 3]).tolist() == [2, 0]
    assert inter.item_index(np.array([55, 100, 7])).tolist() == [2, 0, 1]
    assert int(inter.user_index(10)) == 1
    with pytest.raises(KeyError, match="unknown original user id"):
        inter.user_index([3, 4])
    assert inter.item_index([8, 7], missing="ignore").tolist() == [-1, 1]
    assert inter.user_map() == {3: 0, 10: 1, 42: 2} and inter.item_map()[55] == 2


def test_collapse_keeps_latest_timestamp_and_highest_rating():
    user = np.array([0, 1, 0, 0, 1])
    item = np.array([5, 2, 5, 3, 2])
    rating = np.array([4.0, 1.0, 2.0, 3.0, 5.0], dtype=np.float32)
    ts = np.array([10, 50, 30, 20, 40])
    u, i, r, t = collapse_duplicates(user, item, 6, rating, ts)
    # first occurrences in input order: (0,5), (1,2), (0,3)
    assert u.tolist() == [0, 1, 0] and i.tolist() == [5, 2, 3]
    assert r.tolist() == [4.0, 5.0, 3.0] and t.tolist() == [30, 50, 20]
    u2, i2, r2, t2 = collapse_duplicates(user, item, 6)
    assert u2.tolist() == [0, 1, 0] and r2 is None and t2 is None


def test_duplicates_and_min_rating_through_the_loader(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("user,item,rating,timestamp\n5,9,1.0,100\n5,9,4.0,50\n7,9,2.0,10\n7,8,4.5,20\n")
    inter = load_interactions(p)
    assert len(inter) == 3 and inter.n_users == 2 and inter.n_items == 2
    assert inter.rating.tolist() == [4.0, 2.0, 4.5] and inter.timestamp.tolist() == [100, 10, 20]
    high = load_interactions(p, min_rating=4)
    # filtered before collapsing: user 5's surviving rating is the 4.0 at time 50
    assert high.user_ids.tolist() == [5, 7] and high.item_ids.tolist() == [8, 9]
    assert list(zip(high.user_ids[high.user].tolist(), high.item_ids[high.item].tolist(),
                    high.timestamp.tolist())) == [(5, 9, 50), (7, 8, 20)]
    with pytest.raises(ValueError, match="no interaction has a rating >= 6"):
        load_interactions(p, min_rating=6)
    (tmp_path / "pairs.csv").write_text("1,2\n")
    with pytest.raises(ValueError, match="needs ratings"):
        load_interactions(tmp_path / "pairs.csv", min_rating=1)


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("GNN_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("GNN_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_root() == tmp_path / "home" / ".cache" / "gnn"
