"""RecBole atomic ``.inter`` files read directly: a tab-separated header of typed fields
(``user_id:token  item_id:token  rating:float  timestamp:float``), a file or a folder holding
``<name>.inter`` (issue 17, problem 4)."""
import numpy as np
import pytest

from gnn.data import DatasetFormatError, DatasetNotFoundError, load_dataset, load_interactions
from gnn.data.atomic import read_atomic

ML100K_HEAD = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
ROWS = [("196", "242", 3, 881250949), ("186", "302", 3, 891717742), ("22", "377", 1, 878887116),
        ("196", "51", 2, 880606923), ("22", "302", 4, 886397596), ("186", "51", 5, 884182806)]


def write_inter(path, head=ML100K_HEAD, rows=ROWS, nl="\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join("\t".join(str(x) for x in row) + nl for row in rows)
    path.write_bytes((head.replace("\n", nl) + body).encode("utf-8"))
    return path


def test_ml100k_style_file(tmp_path):
    p = write_inter(tmp_path / "ml-100k.inter")
    inter = load_interactions(p)
    assert inter.name == "ml-100k" and len(inter) == 6
    # token ids that are all plain integers are kept as integers (same ids as u.data gives)
    assert inter.user_ids.tolist() == [22, 186, 196] and inter.item_ids.tolist() == [51, 242, 302, 377]
    got = {(int(inter.user_ids[u]), int(inter.item_ids[i]), float(r), int(t))
           for u, i, r, t in zip(inter.user, inter.item, inter.rating, inter.timestamp)}
    assert got == {(int(u), int(i), float(r), t) for u, i, r, t in ROWS}
    assert inter.timestamp.dtype == np.int64
    ds = load_dataset(p, split="temporal")
    assert ds.protocol == "temporal" and ds.n_users == 3


def test_a_folder_holding_name_dot_inter(tmp_path):
    write_inter(tmp_path / "ml-100k" / "ml-100k.inter")
    (tmp_path / "ml-100k" / "ml-100k.item").write_text("item_id:token\ttitle:token_seq\n242\tKolya\n")
    ds = load_dataset(tmp_path / "ml-100k", split="loo")
    assert ds.name == "ml-100k" and ds.n_users == 3 and ds.n_items == 4
    assert len(ds.test[0]) == 3


def test_a_folder_with_several_inter_files_needs_the_file(tmp_path):
    write_inter(tmp_path / "d" / "a.inter")
    write_inter(tmp_path / "d" / "b.inter")
    with pytest.raises(DatasetNotFoundError, match="a.inter, b.inter"):
        load_dataset(tmp_path / "d")


def test_string_tokens_columns_in_any_order_and_ignored_fields(tmp_path):
    head = ("review_id:token\titem_id:token\tuser_id:token\ttimestamp:float\ttags:token_seq\t"
            "votes:float_seq\tstars:float\n")
    rows = [("r1", "B0001", "A2X", 10.5, "good cheap", "1 2 3", 4),
            ("r2", "B0002", "A2X", 11.25, "", "", 5),
            ("r3", "B0001", "ZZ9", 9, "x", "0.5", 3)]
    p = write_inter(tmp_path / "amazon.inter", head, rows)
    ds = load_dataset(p, split="temporal", ratios=(0.5, 0, 0.5))
    assert ds.user_ids.tolist() == ["A2X", "ZZ9"] and ds.item_ids.tolist() == ["B0001", "B0002"]
    inter = load_interactions(p)
    assert inter.rating is None  # no field named 'rating'
    assert inter.timestamp.dtype == np.float64 and sorted(inter.timestamp.tolist()) == [9, 10.5, 11.25]
    note = ds.notes["ignored_fields"]
    for field in ("review_id:token", "tags:token_seq", "votes:float_seq", "stars:float"):
        assert field in note


def test_bom_crlf_and_empty_lines(tmp_path):
    p = write_inter(tmp_path / "x.inter", nl="\r\n")
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes() + b"\r\n\r\n")
    assert len(load_interactions(p)) == 6


def test_read_atomic_columns(tmp_path):
    p = write_inter(tmp_path / "x.inter", "user_id:token\titem_id:token\n", [("u", "i"), ("v", "i")])
    user, item, rating, timestamp, notes = read_atomic(p)
    assert user.strings().tolist() == ["u", "v"] and item.strings().tolist() == ["i", "i"]
    assert rating is None and timestamp is None and notes == {}


@pytest.mark.parametrize("head, rows, fragment", [
    ("user_id\titem_id:token\n", [("1", "2")], r"line 1: field 'user_id' has no type"),
    ("user_id:token\titem_id:int\n", [("1", "2")], r"line 1: field 'item_id' has type 'int'"),
    ("uid:token\titem_id:token\n", [("1", "2")], r"line 1: no field 'user_id:token' \(fields: uid:token, item_id:token\)"),
    ("user_id:token\titem_id:token\trating:float\n", [("1", "2", "x")], r"line 2: column 'rating': expected a number"),
    ("user_id:token\titem_id:token\n", [("1", "2", "3")], r"line 2: expected 2 fields"),
    ("user_id:token\titem_id:token\n", [], r"no interactions"),
    ("user_id:token,item_id:token\n", [], r"tab-separated"),
])
def test_malformed(tmp_path, head, rows, fragment):
    p = write_inter(tmp_path / "bad.inter", head, rows)
    with pytest.raises(DatasetFormatError, match=fragment) as e:
        load_dataset(p)
    assert str(p) in str(e.value)


def test_empty_file(tmp_path):
    p = tmp_path / "e.inter"
    p.write_text("")
    with pytest.raises(DatasetFormatError, match="empty"):
        load_dataset(p)
