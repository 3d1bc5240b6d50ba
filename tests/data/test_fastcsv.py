"""The vectorised parser: exact values, line endings, blocks, and errors with line numbers."""
import numpy as np
import pytest

from gnn.data import DatasetFormatError
from gnn.data.fastcsv import read_columns, read_int_tokens

NAMES = ["user", "item", "rating", "timestamp"]


def write(tmp_path, text, name="f.csv"):
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def test_values_match_python_exactly(tmp_path):
    rng = np.random.default_rng(0)
    n = 5000
    ints = rng.integers(0, 10 ** rng.integers(1, 19, n), dtype=np.int64)
    floats = [f"{x:.{k}f}" for x, k in zip(rng.normal(0, 1e4, n), rng.integers(0, 9, n))]
    floats[:8] = ["5.", ".5", "-0.25", "1e3", "+2", "3.14159265358979323846", "0", "-7"]
    p = write(tmp_path, "".join(f"{a},{b}\n" for a, b in zip(ints, floats)))
    a, b = read_columns(p, ",", "if", ["i", "f"])
    assert a.dtype == np.int64 and b.dtype == np.float64
    assert a.tolist() == ints.tolist()
    assert b.tolist() == [float(x) for x in floats]


@pytest.mark.parametrize("nl", ["\n", "\r\n"])
@pytest.mark.parametrize("final_newline", [True, False])
@pytest.mark.parametrize("block_size", [5, 17, 1 << 20])
def test_line_endings_and_blocks(tmp_path, nl, final_newline, block_size):
    rows = [(1, 10, 4.5, 964982703), (22, 3, 0.5, 1), (333, 123456, 5.0, 1574327703)] * 7
    text = nl.join(f"{u},{i},{r},{t}" for u, i, r, t in rows) + (nl if final_newline else "")
    cols = read_columns(write(tmp_path, text), ",", "iifi", NAMES, block_size=block_size)
    for c, col in enumerate(cols):
        assert col.tolist() == [row[c] for row in rows]


def test_two_byte_separator_and_tab(tmp_path):
    u, i, r, t = read_columns(write(tmp_path, "1::1193::5::978300760\n6040::3::3.5::1\n"), "::", "iifi", NAMES)
    assert u.tolist() == [1, 6040] and i.tolist() == [1193, 3] and r.tolist() == [5, 3.5]
    u, i = read_columns(write(tmp_path, "7\t8\n9\t10\n"), "\t", "ii", NAMES[:2])
    assert u.tolist() == [7, 9] and i.tolist() == [8, 10]


def test_empty_lines_are_skipped_and_lines_still_counted(tmp_path):
    p = write(tmp_path, "h,h\n\n1,2\r\n\r\n3,4\n\nx,5\n")
    with pytest.raises(DatasetFormatError) as e:
        read_columns(p, ",", "ii", ["user", "item"], skip_lines=1)
    assert e.value.line == 7 and "'x'" in str(e.value)
    p = write(tmp_path, "1,2\n\n\n3,4\n\n")
    assert read_columns(p, ",", "ii", ["user", "item"])[1].tolist() == [2, 4]


@pytest.mark.parametrize("block_size", [8, 1 << 20])
@pytest.mark.parametrize("text, line, fragment", [
    ("1,2,3.0,4\n1,2,3.0\n", 2, "expected 4 fields"),
    ("1,2,3.0,4\n1,2,3.0,4,5\n", 2, "expected 4 fields"),
    ("1,2,3.0,4\n1,,3.0,4\n", 2, "'item' is empty"),
    ("1,2,3.0,4\n1,2,3.0,4\nab,2,3.0,4\n", 3, "'ab'"),
    ("1,2,3.0,4\n1,2.5,3.0,4\n", 2, "'2.5'"),
    ("1,-2,3.0,4\n", 1, "'-2'"),
    ("1,2,nan,4\n", 1, "not a finite number"),
    ("1,2,inf,4\n", 1, "not a finite number"),
    ("1,2,four,4\n", 1, "'four'"),
    ("1,2,3..0,4\n", 1, "'3..0'"),
    ("1,2,,4\n", 1, "expected a number"),
    ("1,2,3.0,12345678901234567890\n", 1, "more than 18 digits"),
    ("1, 2,3.0,4\n", 1, "' 2'"),
])
def test_malformed_fields_name_file_and_line(tmp_path, text, line, fragment, block_size):
    p = write(tmp_path, text)
    with pytest.raises(DatasetFormatError) as e:
        read_columns(p, ",", "iifi", NAMES, block_size=block_size)
    assert e.value.line == line and e.value.path == str(p)
    assert fragment in str(e.value) and f"line {line}" in str(e.value)


def test_errors_in_later_blocks_report_the_file_line(tmp_path):
    good = "".join(f"{k},{k + 1}\n" for k in range(1000))
    p = write(tmp_path, "user,item\n" + good + "5;6\n" + good)
    with pytest.raises(DatasetFormatError) as e:
        read_columns(p, ",", "ii", ["user", "item"], skip_lines=1, block_size=64)
    assert e.value.line == 1002


def test_int_tokens(tmp_path):
    p = write(tmp_path, "0 5 6  7\n1\n\n2\t8 \r\n3 9", "t.txt")
    v, line = read_int_tokens(p, block_size=6)
    assert v.tolist() == [0, 5, 6, 7, 1, 2, 8, 3, 9]
    assert line.tolist() == [1, 1, 1, 1, 2, 4, 4, 5, 5]
    p = write(tmp_path, "0 5 6\n1 2 x3\n", "t.txt")
    with pytest.raises(DatasetFormatError, match="line 2.*'x3'"):
        read_int_tokens(p)


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("block_size", [4, 1 << 20])
@pytest.mark.parametrize("skip_lines", [0, 1])
def test_bom_quotes_and_the_slow_float_path(tmp_path, block_size, workers, skip_lines):
    # The BOM must go whether or not a header is skipped, and whatever block the first line
    # lands in; quoted floats reach both the vectorised path (4.5) and the float() path (1e3).
    head = "u,i,r\n" if skip_lines else ""
    text = head + '1,"2","4.5"\n"3",4,"1e3"\n5,6,"-.5"\n'
    p = write(tmp_path, b"\xef\xbb\xbf" + text.encode())
    u, i, r = read_columns(p, ",", "iif", NAMES[:3], skip_lines=skip_lines, block_size=block_size,
                           workers=workers)
    assert u.tolist() == [1, 3, 5] and i.tolist() == [2, 4, 6] and r.tolist() == [4.5, 1000.0, -0.5]


@pytest.mark.parametrize("text, line, fragment", [
    ('1,2,"3,0",4\n', 1, "found 5 (a separator inside quotes is not supported)"),
    ('1,2,3.0,4\n1,2",3.0,4\n', 2, "unbalanced double quote in '2\"'"),
    ('1,2,"",4\n', 1, "expected a number"),
    ('1,2,"x",4\n', 1, "expected a number, got 'x'"),
    ('1,"2.5",3.0,4\n', 1, "expected a non-negative integer, got '2.5'"),
    ('"\n', 1, "expected 4 fields"),
])
def test_quote_errors_name_the_line(tmp_path, text, line, fragment):
    p = write(tmp_path, text)
    with pytest.raises(DatasetFormatError) as e:
        read_columns(p, ",", "iifi", NAMES)
    assert e.value.line == line and fragment in str(e.value)


def test_int_tokens_skip_a_bom(tmp_path):
    p = write(tmp_path, b"\xef\xbb\xbf0 5 6\n1 7\n", "t.txt")
    v, line = read_int_tokens(p)
    assert v.tolist() == [0, 5, 6, 1, 7] and line.tolist() == [1, 1, 1, 2, 2]
