"""Every MovieLens layout from small generated files, by name and by path, and their errors."""
import numpy as np
import pytest

from datafiles import RATINGS, TITLES, WHOLE, write_100k_release, write_csv_release, write_dat_release
from gnn.data import DatasetFormatError, load_dataset, load_interactions
from gnn.data.movielens import RELEASES, read_ratings, read_titles


def check(inter, ratings, titles=TITLES):
    assert inter.n_users == len({r[0] for r in ratings})
    assert inter.n_items == len({r[1] for r in ratings})
    # remapped ids translate back to the file's rows, in order
    got = list(zip(inter.user_ids[inter.user].tolist(), inter.item_ids[inter.item].tolist(),
                   inter.rating.tolist(), inter.timestamp.tolist()))
    assert got == [(u, i, float(r), t) for u, i, r, t in ratings]
    assert inter.item_titles == [titles[k] for k in inter.item_ids.tolist()]
    assert inter.user.dtype == np.int64 and inter.rating.dtype == np.float32


@pytest.mark.parametrize("name", ["ml-latest-small", "ml-latest", "ml-20m", "ml-25m", "ml-32m"])
def test_csv_releases_by_name(tmp_path, name):
    write_csv_release(tmp_path / name)
    check(load_interactions(name, root=tmp_path, download=False), RATINGS)


def test_csv_release_lf_and_path(tmp_path):
    folder = write_csv_release(tmp_path / "mine", crlf=False)
    check(load_interactions(folder), RATINGS)


def test_ml_100k(tmp_path):
    write_100k_release(tmp_path / "ml-100k")
    check(load_interactions("ml-100k", root=tmp_path, download=False), WHOLE)


def test_ml_1m_latin1(tmp_path):
    write_dat_release(tmp_path / "ml-1m", WHOLE, encoding="latin-1")
    inter = load_interactions("ml-1m", root=tmp_path, download=False)
    check(inter, WHOLE)
    assert "Amélie" in inter.title(inter.item_index([30])[0])


@pytest.mark.parametrize("folder", ["ml-10M100K", "ml-10m"])
def test_ml_10m_utf8_in_its_zip_folder(tmp_path, folder):
    write_dat_release(tmp_path / folder, RATINGS, encoding="utf-8")
    check(load_interactions("ml-10m", root=tmp_path, download=False), RATINGS)


def test_release_table():
    assert RELEASES["ml-10m"].folder == "ml-10M100K"
    assert {r.ratings for r in RELEASES.values()} == {"ratings.csv", "ratings.dat", "u.data"}
    assert all(r.md5 is None or len(r.md5) == 32 for r in RELEASES.values())


def test_titles_with_commas_quotes_and_no_titles_file(tmp_path):
    titles = {1: 'Shawshank Redemption, The (1994)', 2: 'Film "quoted", and more (2000)'}
    folder = write_csv_release(tmp_path / "x", ratings=[(1, 1, 5.0, 1), (1, 2, 4.0, 2)], titles=titles)
    (folder / "movies.csv").write_text('movieId,title,genres\n1,"Shawshank Redemption, The (1994)",Drama\n'
                                       '2,"Film ""quoted"", and more (2000)",Drama\n')
    assert load_interactions(folder).item_titles == list(titles.values())
    (folder / "movies.csv").unlink()
    inter = load_interactions(folder)
    assert inter.item_titles is None and inter.title(0) == "1"


def test_rated_movie_missing_from_titles_gets_empty_title(tmp_path):
    folder = write_csv_release(tmp_path / "x", titles={10: "Toy Story (1995)"})
    inter = load_interactions(folder)
    assert inter.item_titles[0] == "Toy Story (1995)" and inter.item_titles[1] == ""
    assert inter.title(1) == "20"


@pytest.mark.parametrize("content, line, fragment", [
    (b"", None, "empty"),
    (b"userId,movieId,rating,timestamp\r\n", None, "no ratings"),
    (b"1,10,4.0,964982703\n", 1, "header"),
    (b"user,item,rating,timestamp\n1,10,4.0,1\n", 1, "header"),
    (b"userId,movieId,rating,timestamp\n1,10,4.0,1\n1,11,5.5,2\n", 3, "outside the MovieLens range"),
    (b"userId,movieId,rating,timestamp\n1,10,4.0,1\n1,11,0,2\n", 3, "outside the MovieLens range"),
    (b"userId,movieId,rating,timestamp\n1,10,NaN,1\n", 2, "not a finite number"),
    (b"userId,movieId,rating,timestamp\n1,10,4.0,1\nu2,11,3.0,2\n", 3, "'u2'"),
    (b"userId,movieId,rating,timestamp\n1,10,4.0\n", 2, "expected 4 fields"),
])
def test_malformed_ratings_csv(tmp_path, content, line, fragment):
    folder = write_csv_release(tmp_path / "x")
    (folder / "ratings.csv").write_bytes(content)
    with pytest.raises(DatasetFormatError) as e:
        load_dataset(folder)
    assert fragment in str(e.value) and e.value.line == line
    assert "ratings.csv" in str(e.value)


def test_malformed_dat_and_u_data(tmp_path):
    folder = write_dat_release(tmp_path / "a", WHOLE)
    (folder / "ratings.dat").write_text("1::10::4::1\n1::11:4::2\n")
    with pytest.raises(DatasetFormatError, match=r"ratings.dat, line 2: expected 4 fields"):
        read_ratings(folder / "ratings.dat")
    folder = write_100k_release(tmp_path / "b")
    (folder / "u.data").write_text("1\t10\t4\t1\n1\t11\t9\t2\n")
    with pytest.raises(DatasetFormatError, match=r"u.data, line 2: rating 9.0 outside"):
        read_ratings(folder / "u.data")


def test_malformed_titles(tmp_path):
    p = tmp_path / "movies.csv"
    p.write_text("movieId,title,genres\n1,Toy Story,Comedy\n2,Heat, The,Drama\n")
    with pytest.raises(DatasetFormatError, match=r"movies.csv, line 3: expected 3 fields"):
        read_titles(p)
    p.write_text("1,Toy Story,Comedy\n")
    with pytest.raises(DatasetFormatError, match="line 1: missing header"):
        read_titles(p)
    p = tmp_path / "movies.dat"
    p.write_text("1::Toy Story::Comedy\nabc::Heat::Drama\n")
    with pytest.raises(DatasetFormatError, match=r"movies.dat, line 2: movie id 'abc'"):
        read_titles(p)
    p.write_text("1::Toy Story::Comedy\n2 Heat Drama\n")
    with pytest.raises(DatasetFormatError, match=r"line 2: expected fields"):
        read_titles(p)


@pytest.mark.parametrize("name, text", [
    ("ratings.csv", "userId,movieId,rating,timestamp\n1,10,4.0,5\n"),
    ("ratings.dat", "1::10::4::5\n"),
    ("u.data", "1\t10\t4\t5\n"),
])
def test_ratings_with_a_utf8_bom(tmp_path, name, text):
    p = tmp_path / name
    p.write_bytes(b"\xef\xbb\xbf" + text.encode())
    u, i, r, t = read_ratings(p)
    assert (u.tolist(), i.tolist(), r.tolist(), t.tolist()) == ([1], [10], [4.0], [5])
