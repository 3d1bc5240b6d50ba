"""Delimited files whose ids are not non-negative integers ("tokens": 'user_0000', ASINs, huge or
negative numbers) are mapped to contiguous ids and back (issue 17, problem 4).

The reference for every file is the csv module (quote handling, BOM, CRLF): each line's original
ids must come back through ``user_ids[user]`` / ``item_ids[item]``, ids in ascending string order.
"""
import csv
import io

import numpy as np
import pytest

from gnn.data import DatasetFormatError, load_dataset, load_interactions, read_delimited
from gnn.data.delimited import sniff
from gnn.data.fastcsv import read_columns
from gnn.data.tokens import TokenIds


def reference_pairs(raw: bytes, header: bool):
    """{(user, item)} of a file read with the csv module (independent of the library)."""
    text = raw.decode("utf-8-sig")
    rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    return {(r[0], r[1]) for r in rows[1 if header else 0:]}


def loaded_pairs(inter):
    return {(str(inter.user_ids[u]), str(inter.item_ids[i])) for u, i in zip(inter.user, inter.item)}


def write(tmp_path, raw, name="x.csv"):
    p = tmp_path / name
    p.write_bytes(raw if isinstance(raw, bytes) else raw.encode("utf-8"))
    return p


def test_string_ids_are_mapped_and_back(tmp_path):
    # the reproduction: "expected a non-negative integer, got 'user_0000'"
    rng = np.random.default_rng(0)
    lines = [f"user_{u:04d},item_{i:03d},{rng.integers(1, 6)}" for u, i in
             zip(rng.integers(0, 40, 500), rng.integers(0, 70, 500))]
    raw = "\n".join(lines) + "\n"
    p = write(tmp_path, raw)
    inter = load_interactions(p)
    assert inter.user_ids.dtype.kind == "U" and inter.item_ids.dtype.kind == "U"
    assert inter.user_ids.tolist() == sorted({x.split(",")[0] for x in lines})
    assert inter.item_ids.tolist() == sorted({x.split(",")[1] for x in lines})
    assert loaded_pairs(inter) == reference_pairs(raw.encode(), header=False)
    assert inter.user_index(["user_0003"]).tolist() == [inter.user_ids.tolist().index("user_0003")]
    assert inter.item_map()[inter.item_ids[5]] == 5
    ds = load_dataset(p, seed=1)  # the usual splits over the same ids
    assert ds.n_users == len(inter.user_ids) and ds.user_ids.tolist() == inter.user_ids.tolist()
    assert ds.train_csr.nnz + ds.valid_csr.nnz + ds.test_csr.nnz == len(inter)


@pytest.mark.parametrize("text, users", [
    ("-3,1\n5,2\n", ["-3", "5"]),                                   # negative numbers
    ("12345678901234567890123,1\n7,2\n", ["12345678901234567890123", "7"]),  # beyond int64
    ("007,1\n7,2\n", ["007", "7"]),                                 # a leading zero is text
    ("1.5,1\n2,2\n", ["1.5", "2"]),
    ("B00005N7P0,1\n0000013714,2\n", ["0000013714", "B00005N7P0"]),  # ASINs
])
def test_ids_that_are_not_plain_integers_are_kept_as_text(tmp_path, text, users):
    inter = load_interactions(write(tmp_path, text))
    assert inter.user_ids.tolist() == users and inter.item_ids.tolist() == [1, 2]


def test_sparse_and_huge_integer_ids_stay_integers(tmp_path):
    inter = load_interactions(write(tmp_path, "999999999999999999,10\n5,1000000000000\n0,10\n"))
    assert inter.user_ids.dtype == np.int64 and inter.user_ids.tolist() == [0, 5, 999999999999999999]
    assert inter.item_ids.tolist() == [10, 1000000000000]


def test_a_late_string_id_turns_the_whole_column_to_text(tmp_path):
    # integers for several blocks, then one string id: the column is read again as text
    lines = [f"{u},{u % 7}" for u in range(3000)] + ["user_x,3"]
    p = write(tmp_path, "\n".join(lines) + "\n")
    cols = read_columns(p, ",", "II", ["user", "item"], block_size=256)
    assert isinstance(cols[0], TokenIds) and cols[1].dtype == np.int64
    assert cols[0].strings().tolist() == [x.split(",")[0] for x in lines]
    inter = load_interactions(p)
    assert len(inter.user_ids) == 3001 and "user_x" in inter.user_ids.tolist()


@pytest.mark.parametrize("block_size", [32, 100, 1 << 20])
def test_blocks_and_widths_agree(tmp_path, block_size):
    # tokens of 1..90 bytes (beyond the vectorised width), across block boundaries
    rng = np.random.default_rng(3)
    users = ["u" + "x" * int(n) + str(k) for k, n in enumerate(rng.integers(0, 90, 60))]
    lines = [f"{users[int(k)]},i{int(j)}" for k, j in zip(rng.integers(0, 60, 400), rng.integers(0, 9, 400))]
    p = write(tmp_path, "\n".join(lines) + "\n")
    u, i = read_columns(p, ",", "tt", ["user", "item"], block_size=block_size)
    assert u.strings().tolist() == [x.split(",")[0] for x in lines]
    assert i.strings().tolist() == [x.split(",")[1] for x in lines]
    assert u.vocab.tolist() == sorted(set(u.strings().tolist()))


# Odd inputs: quoted fields, BOM, CRLF, empty lines, unicode ids, duplicates.
@pytest.mark.parametrize("raw, header", [
    (b'"user_1","item_1"\n"user_2",item_2\n', False),                       # quoted
    (b'\xef\xbb\xbfuser,item,rating\r\nu1,i1,5\r\n\r\nu2,i2,4\r\n', True),  # BOM, CRLF, empty line
    ("usér,ítem\nJosé,日本\nZoë,café\nJosé,café\n".encode(), True),         # unicode
    ("José,日本,5\nZoë,café,4\n".encode(), False),                           # unicode, no header
    (b"a b\tc d\t5\n", False),                                              # spaces inside ids
    (b"u1;i1\nu1;i1\nu2;i1\n", False),                                       # duplicate pairs
])
def test_odd_inputs_match_the_csv_module(tmp_path, raw, header):
    p = write(tmp_path, raw)
    sep = sniff(p)[0]
    inter = load_interactions(p)
    want = reference_pairs(raw.replace(sep.encode(), b","), header)
    assert loaded_pairs(inter) == want and len(inter) == len(want)
    assert inter.user_ids.tolist() == sorted({u for u, _ in want})


@pytest.mark.parametrize("text, header", [
    ("user,item\nu1,i1\n", True),               # names over ids with digits
    ("user_id,item_id,rating\nu1,i1,5\n", True),
    ("u1,i1\nu2,i2\n", False),                  # ids with digits: no header
    ("alice,matrix,5\nbob,up,4\n", False),      # a number in the line: data
    ("1,x\n2,y\n", False),
    ("userId,movieId,rating,timestamp\n1,2,3.5,4\n", True),
])
def test_header_rules(tmp_path, text, header):
    p = write(tmp_path, text)
    assert sniff(p)[1] is header
    assert len(load_interactions(p)) == text.count("\n") - header


def test_header_can_be_forced(tmp_path):
    p = write(tmp_path, "alice,matrix\nbob,up\n")  # names only: read as a header unless told
    assert load_interactions(p).user_ids.tolist() == ["bob"]
    assert load_interactions(p, header=False).user_ids.tolist() == ["alice", "bob"]
    q = write(tmp_path, "7,8\n9,10\n", "y.csv")
    assert load_interactions(q, header=True).user_ids.tolist() == [9]


@pytest.mark.parametrize("raw, fragment", [
    (b"user,item\n", "line 1: no interactions after the header 'user,item'"),
    (b"u1,i1\nu2,\n", "line 2: column 'item' is empty"),
    (b'u1,i1\n"u2,i2\n', "line 2: column 'user': unbalanced double quote"),
    (b"u1,i1\n\xff\xfe,i2\n", "not valid UTF-8"),
    (b"u1,i1,5\nu2,i2,x\n", "line 2: column 'rating': expected a number, got 'x'"),
])
def test_token_files_keep_precise_errors(tmp_path, raw, fragment):
    p = write(tmp_path, raw)
    with pytest.raises(DatasetFormatError, match=fragment) as e:
        load_dataset(p)
    assert str(p) in str(e.value)


def test_min_rating_drops_unused_tokens(tmp_path):
    p = write(tmp_path, "a,x,1\nb,y,5\nc,x,4\n")
    inter = load_interactions(p, min_rating=4)
    assert inter.user_ids.tolist() == ["b", "c"] and inter.item_ids.tolist() == ["x", "y"]


def test_read_delimited_returns_token_columns(tmp_path):
    u, i, r, t = read_delimited(write(tmp_path, "a,1,2.5,10\nb,2,3,11\n"))
    assert isinstance(u, TokenIds) and u.strings().tolist() == ["a", "b"]
    assert i.tolist() == [1, 2] and r.tolist() == [2.5, 3.0] and t.tolist() == [10, 11]
