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
    ("user,item\n", "line 1: no interactions after the header 'user,item'"),
    ("a,b\n", "line 1: no interactions after the header 'a,b' .*pass header=False"),
    ("1\n", "cannot find a separator"),
    ("1,2,3,4,5\n", "expected 2 to 4 columns"),
    ("1,2\n3,4,5\n", "line 2: expected 2 fields"),
    ("1,2,4.0\n3,,5\n", "line 2: column 'item' is empty"),
    ("1,2,4.0\n3,4,nan\n", "line 2: column 'rating'"),
    ("1,2,4.0,10\n3,4,5,1.5\n", "line 2: column 'timestamp'"),
])
def test_malformed(tmp_path, text, fragment):
    p = tmp_path / "x.csv"
    p.write_text(text)
    with pytest.raises(DatasetFormatError, match=fragment):
        load_dataset(p)


@pytest.mark.parametrize("text, items", [
    ("1,x\n", ["x"]),               # was read as a header (then "no interactions") before token ids
    ("1,2,4.0\n3,x,5\n", ["2", "x"]),  # was "line 2: column 'item'": a text id is an id now
])
def test_text_ids_that_used_to_be_errors(tmp_path, text, items):
    p = tmp_path / "x.csv"
    p.write_text(text)
    assert load_interactions(p).item_ids.tolist() == items


def test_unknown_name_or_path():
    with pytest.raises(DatasetNotFoundError, match="neither a known dataset"):
        load_dataset("no-such-dataset-or-file")


# A UTF-8 byte-order mark (Excel's "CSV UTF-8") and quoted numbers (R's write.csv, spreadsheets).
@pytest.mark.parametrize("raw, users", [
    (b"\xef\xbb\xbf1,2\n3,4\n", [1, 3]),                      # BOM, no header
    (b"\xef\xbb\xbfuser,item\r\n1,2\r\n3,4\r\n", [1, 3]),         # BOM and a header
    (b"\xef\xbb\xbf\n1,2\n3,4", [1, 3]),                       # BOM, then an empty line
    (b'"1","2"\n"3","4"\n', [1, 3]),                        # quoted, no header
    (b'"1","2"', [1]),                                       # one quoted line, no newline
    (b'"user","item"\n"1",2\n3,"4"\n', [1, 3]),              # quoted header, some fields quoted
    (b'\xef\xbb\xbf"1";"2"\n3;4\n', [1, 3]),                   # both, ';' separated
])
def test_bom_and_quoted_fields_parse(tmp_path, raw, users):
    p = tmp_path / "x.csv"
    p.write_bytes(raw)
    inter = load_interactions(p)
    assert inter.user_ids.tolist() == users and inter.item_ids.tolist() == [u + 1 for u in users]


@pytest.mark.parametrize("raw, fragment", [
    (b'"1",2\n"3,4",5\n', r"line 2: .*expected 2 fields .*separator inside quotes"),
    (b'1,2\n3,"4\n', r"line 2: column 'item': unbalanced double quote in '\"4'"),
    (b'1,2\n"",4\n', r"line 2: column 'user' is empty"),
    (b"\xff\xfe1\x00,\x002\x00\n\x00", r"line 1: the file is UTF-16 or UTF-32 encoded"),
    (b"1,2\n\xef\xbb\xbf3,4\n", r"line 2: column 'user': a byte-order mark inside the file"),
])
def test_bom_and_quote_errors_name_the_line(tmp_path, raw, fragment):
    p = tmp_path / "x.csv"
    p.write_bytes(raw)
    with pytest.raises(DatasetFormatError, match=fragment) as e:
        load_interactions(p)
    assert str(p) in str(e.value)
