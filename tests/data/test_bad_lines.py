"""``on_bad_line="skip"`` (``--skip-bad-lines``): malformed lines are skipped, counted and named;
the default stays the precise error (file, line; exit 2 in the CLI) (issue 17, problem 4).

The reference is a line-by-line filter written here with Python's own rules (``str.split``,
``float``, ``str.isdigit``), independent of the vectorised parser.
"""
import logging
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gnn.data import DatasetFormatError, load_dataset, load_interactions
from gnn.data.atomic import read_atomic
from gnn.data.badlines import BadLines
from gnn.data.fastcsv import read_columns

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def reference_good_lines(lines, n_fields=4):
    """(good (user, item, rating, timestamp) rows, 1-based numbers of the bad lines)."""
    good, bad = [], []
    for n, line in enumerate(lines, 1):
        if not line:
            continue
        f = line.split(",")
        ok = len(f) == n_fields and f[0].isdigit() and f[1].isdigit() and f[3].isdigit()
        if ok:
            try:
                ok = math.isfinite(float(f[2]))
            except ValueError:
                ok = False
        if ok:
            good.append((int(f[0]), int(f[1]), float(f[2]), int(f[3])))
        else:
            bad.append(n)
    return good, bad


CORRUPTIONS = ["1,2,3", "1,2,3,4,5", "7,8,x,9", "7,8,nan,9", "7,8,4.0,1.5", ",8,4,9", "7,8,4,",
               "7,8,\"4,9", "7,8,inf,3", "", "garbage"]


def corrupted_file(tmp_path, n=4000, n_bad=60, seed=0):
    rng = np.random.default_rng(seed)
    lines = [f"{rng.integers(0, 300)},{rng.integers(0, 500)},{rng.integers(1, 11) / 2},{rng.integers(10**9)}"
             for _ in range(n)]
    for k in rng.choice(np.arange(1, n), n_bad, replace=False):
        lines[k] = CORRUPTIONS[int(rng.integers(len(CORRUPTIONS)))]
    p = tmp_path / "ratings.csv"
    p.write_text("\n".join(lines) + "\n")
    return p, lines


def test_one_bad_line_aborts_by_default_with_file_and_line(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("1,2,4.0,10\n3,4,5.0\n5,6,1.0,12\n")
    with pytest.raises(DatasetFormatError, match=r"r.csv, line 2: expected 4 fields"):
        load_dataset(p)


@pytest.mark.parametrize("block_size", [64, 4096, 1 << 24])
@pytest.mark.parametrize("workers", [1, 3])
def test_skipped_lines_match_a_line_by_line_reference(tmp_path, block_size, workers):
    p, lines = corrupted_file(tmp_path)
    good, bad = reference_good_lines(lines)
    report = BadLines(p)
    u, i, r, t = read_columns(p, ",", "iifi", ["user", "item", "rating", "timestamp"],
                              block_size=block_size, workers=workers, bad_lines=report)
    assert list(zip(u.tolist(), i.tolist(), r.tolist(), t.tolist())) == good
    assert report.count == len(bad) and report.lines == bad[:len(report.lines)]
    assert len(report.lines) == min(len(bad), BadLines.SHOWN)


def test_load_dataset_skips_and_reports(tmp_path, caplog):
    p, lines = corrupted_file(tmp_path, n=500, n_bad=7, seed=2)
    good, bad = reference_good_lines(lines)
    with caplog.at_level(logging.WARNING, logger="gnn.data"):
        ds = load_dataset(p, on_bad_line="skip")
    assert ds.bad_lines.count == len(bad) and ds.bad_lines.lines == bad[:BadLines.SHOWN]
    assert len({(u, i) for u, i, _, _ in good}) == ds.train_csr.nnz + ds.valid_csr.nnz + ds.test_csr.nnz
    logged = [rec.getMessage() for rec in caplog.records if rec.name == "gnn.data"]
    assert len(logged) == 1 and f"skipped {len(bad)} malformed lines" in logged[0]
    assert ", ".join(str(n) for n in bad[:BadLines.SHOWN]) in logged[0] and str(p) in logged[0]
    clean = tmp_path / "clean.csv"
    clean.write_text("1,2,3,4\n")
    assert load_dataset(clean, on_bad_line="skip").bad_lines is None  # nothing skipped: no report


def test_skip_keeps_token_ids_and_skips_empty_ids(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("user,item,rating\nu1,i1,5\nu2,,4\nu3,i3\nu1,i2,x\nu4,i4,3\n")
    inter = load_interactions(p, on_bad_line="skip")
    assert inter.user_ids.tolist() == ["u1", "u4"] and inter.bad_lines.lines == [3, 4, 5]


def test_skip_in_movielens_and_inter_files_not_text_format(tmp_path):
    ml = tmp_path / "ml"
    ml.mkdir()
    (ml / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,4.0,5\n1,3,9.0,5\n2,x,1,1\n2,3,1.0,7\n")
    inter = load_interactions(ml, on_bad_line="skip")
    assert len(inter) == 2 and inter.bad_lines.lines == [3, 4]  # rating 9 is outside 0.5..5
    with pytest.raises(DatasetFormatError, match="line 4: column 'movieId'"):
        load_interactions(ml)
    (ml / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,4.0,5\n\n1,3,9.0,5\n")
    with pytest.raises(DatasetFormatError, match="line 4: rating 9.0 outside"):
        load_interactions(ml)

    given = tmp_path / "given"  # train.txt / test.txt are read strictly: the option is refused
    given.mkdir()
    (given / "train.txt").write_text("0 1 2\n1 x 3\n")
    (given / "test.txt").write_text("0 3\n")
    with pytest.raises(ValueError, match="train.txt/test.txt are read strictly"):
        load_dataset(given, on_bad_line="skip")

    inter_file = tmp_path / "a.inter"
    inter_file.write_text("user_id:token\titem_id:token\trating:float\nu\ti\t1\nu\tj\nv\ti\t2\n")
    report = BadLines(inter_file)
    user, item, rating, _, _ = read_atomic(inter_file, bad_lines=report)
    assert user.strings().tolist() == ["u", "v"] and report.lines == [3]


def test_unknown_policy_is_refused(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("1,2\n")
    with pytest.raises(ValueError, match="on_bad_line must be 'error' or 'skip'"):
        load_dataset(p, on_bad_line="warn")


def run_train(*args):
    return subprocess.run([sys.executable, "-m", "gnn.train", *map(str, args)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=600)


def test_cli_skip_bad_lines(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["user,item,rating"] + [f"user_{rng.integers(30):02d},item_{rng.integers(40):02d},{rng.integers(1, 6)}"
                                    for _ in range(600)]
    lines[17] = "user_01,item_02"  # line 18
    lines[400] = "user_01,item_02,4,extra"  # line 401
    p = tmp_path / "r.csv"
    p.write_text("\n".join(lines) + "\n")
    common = ["--model", "mf", "--dataset", p, "--epochs", "1", "--device", "cpu", "--no-progress"]
    failed = run_train(*common)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert f"error: {p}, line 18: expected 3 fields" in failed.stderr
    ok = run_train(*common, "--skip-bad-lines")
    assert ok.returncode == 0, ok.stderr
    assert f"{p}: skipped 2 malformed lines (lines 18, 401" in ok.stderr
