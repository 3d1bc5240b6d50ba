"""Generic delimited files: separator and header rules, columns, and errors."""
import pytest

from gnn.data import DatasetFormatError, DatasetNotFoundError, load_dataset, load_interactions
from gnn.data.delimited import sniff


@pytest.mark.parametrize("text, sep, header, ncols", [
    ("1,2,5.0,100\n", ",", False, 4),
    ("user,item\n1,2\n", ",", True, 2),
    ("1\t2\t3\n", "\t", False, 3),
    ("1::2::3::4\n", "::", False, 4),
    ("u;i\n1;2\n", ";", True, 2),
    ("1 2 4.5\n", " ", False, 3),
    ("\n\nuserId,movieId,rating,timestamp\r\n1,2,3,4\r\n", ",", True, 4),
    ("\ufeffa,b\n1,2\n", ",", True, 2),
])
def test_sniff(tmp_path, text, sep, header, ncols):
    p = tmp_path / "x.txt"
    p.write_text(text, encoding="utf-8")
    got = sniff(p)
    assert got[:3] == (sep, header, ncols)
    inter = load_interactions(p)
    assert len(inter) == 1 and inter.user_ids.tolist() == [1]
    assert (inter.rating is not None) == (ncols >= 3) and (inter.timestamp is not None) == (ncols >= 4)


def test_explicit_separator(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("1|2\n3|4\n")
    inter = load_interactions(p, sep="|")
    assert inter.user_ids.tolist() == [1, 3] and inter.item_ids.tolist() == [2, 4]


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("\n\n", "empty"),
    ("user,item\n", "only a header"),
    ("1\n", "cannot find a separator"),
    ("1,2,3,4,5\n", "expected 2 to 4 columns"),
    ("1,2\n3,4,5\n", "line 2: expected 2 fields"),
    ("1,2,4.0\n3,x,5\n", "line 2: column 'item'"),
    ("1,2,4.0\n3,4,nan\n", "line 2: column 'rating'"),
    ("1,2,4.0,10\n3,4,5,1.5\n", "line 2: column 'timestamp'"),
])
def test_malformed(tmp_path, text, fragment):
    p = tmp_path / "x.csv"
    p.write_text(text)
    with pytest.raises(DatasetFormatError, match=fragment):
        load_dataset(p)


def test_unknown_name_or_path():
    with pytest.raises(DatasetNotFoundError, match="neither a known dataset"):
        load_dataset("no-such-dataset-or-file")
