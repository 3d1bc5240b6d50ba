"""Downloads against a local HTTP server on 127.0.0.1 (never the internet)."""
import dataclasses
import hashlib
import http.server
import os
import threading
import zipfile

import pytest

from datafiles import RATINGS, TITLES, closed_port_url, http_root  # noqa: F401 (fixtures)
from gnn.data import (ChecksumError, DatasetFormatError, DatasetNotFoundError, DownloadError,
                      download_movielens, load_dataset)
from gnn.data.download import fetch, safe_extract
from gnn.data.movielens import RELEASES


def csv_zip(path, folder="ml-latest", extra=None, ratings=None):
    """A zip laid out like GroupLens' (top folder, ratings.csv, movies.csv)."""
    lines = ["userId,movieId,rating,timestamp"] + [f"{u},{i},{r},{t}" for u, i, r, t in RATINGS]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{folder}/", "")
        zf.writestr(f"{folder}/ratings.csv", ratings if ratings is not None else "\r\n".join(lines) + "\r\n")
        zf.writestr(f"{folder}/movies.csv", "movieId,title,genres\n" +
                    "".join(f'{k},"{v}",Drama\n' for k, v in TITLES.items()))
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def pin(monkeypatch, name, digest):
    monkeypatch.setitem(RELEASES, name, dataclasses.replace(RELEASES[name], md5=digest))


def leftovers(root):
    return [p.name for p in root.iterdir() if ".part" in p.name or p.name.startswith(".")]


def test_download_verify_extract_then_use_the_cache(tmp_path, http_root, monkeypatch):
    serve, url, requests = http_root
    z = csv_zip(serve / "ml-25m.zip", folder="ml-25m")
    pin(monkeypatch, "ml-25m", md5(z))
    root = tmp_path / "cache"
    ds = load_dataset("ml-25m", root=root, base_url=url)
    assert ds.n_users == 3 and ds.n_items == 4 and ds.item_titles[0] == TITLES[10]
    assert (root / "ml-25m" / "ratings.csv").is_file() and (root / "ml-25m.zip").is_file()
    assert requests == ["/ml-25m.zip"] and leftovers(root) == []
    load_dataset("ml-25m", root=root, base_url=url)  # now local: no second request
    assert requests == ["/ml-25m.zip"]


def test_base_url_from_environment(tmp_path, http_root, monkeypatch):
    serve, url, requests = http_root
    pin(monkeypatch, "ml-32m", md5(csv_zip(serve / "ml-32m.zip", folder="ml-32m")))
    monkeypatch.setenv("GNN_MOVIELENS_URL", url + "/")
    assert download_movielens("ml-32m", tmp_path) == tmp_path / "ml-32m"
    assert requests == ["/ml-32m.zip"]


def test_unpinned_release_is_checked_against_the_served_md5(tmp_path, http_root):
    serve, url, requests = http_root
    z = csv_zip(serve / "ml-latest.zip")
    (serve / "ml-latest.zip.md5").write_text(f"MD5 (ml-latest.zip) = {md5(z)}\n")
    assert download_movielens("ml-latest", tmp_path, base_url=url) == tmp_path / "ml-latest"
    assert requests == ["/ml-latest.zip.md5", "/ml-latest.zip"]


def test_served_md5_mismatch_or_missing(tmp_path, http_root):
    serve, url, _ = http_root
    csv_zip(serve / "ml-latest.zip")
    with pytest.raises(DownloadError, match="refusing to use an unverified archive"):
        download_movielens("ml-latest", tmp_path, base_url=url)
    (serve / "ml-latest.zip.md5").write_text("0" * 32 + "  ml-latest.zip\n")
    with pytest.raises(ChecksumError):
        download_movielens("ml-latest", tmp_path, base_url=url)
    assert not (tmp_path / "ml-latest.zip").exists() and leftovers(tmp_path) == []


def test_ml_latest_small_files_are_pinned_too(tmp_path, http_root):
    serve, url, _ = http_root
    z = csv_zip(serve / "ml-latest-small.zip", folder="ml-latest-small")
    (serve / "ml-latest-small.zip.md5").write_text(f"{md5(z)}  ml-latest-small.zip\n")
    with pytest.raises(ChecksumError, match="ratings.csv: SHA-256"):
        download_movielens("ml-latest-small", tmp_path, base_url=url)
    assert not (tmp_path / "ml-latest-small").exists()


def test_truncated_download_fails_checksum_and_leaves_nothing(tmp_path, http_root, monkeypatch):
    serve, url, _ = http_root
    z = csv_zip(serve / "ml-20m.zip", folder="ml-20m")
    pin(monkeypatch, "ml-20m", md5(z))
    z.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
    with pytest.raises(ChecksumError, match="differs from the expected"):
        load_dataset("ml-20m", root=tmp_path / "cache", base_url=url)
    assert os.listdir(tmp_path / "cache") == []


def test_wrong_checksum(tmp_path, http_root, monkeypatch):
    serve, url, _ = http_root
    csv_zip(serve / "ml-1m.zip", folder="ml-1m")
    with pytest.raises(ChecksumError, match="c4d9eecfca2ab87c1945afe126590906"):  # the real pin
        download_movielens("ml-1m", tmp_path, base_url=url)
    assert not (tmp_path / "ml-1m.zip").exists()


class _ShortBody(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"x" * 10)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_connection_closed_before_content_length(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ShortBody)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/x.zip"
        with pytest.raises(DownloadError):
            fetch(url, tmp_path / "x.zip")
        assert os.listdir(tmp_path) == []
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("bad_member", ["ml-100k/../../evil.txt", "/abs/evil.txt", "../evil.txt", "C:/evil.txt"])
def test_unsafe_member_paths_are_refused(tmp_path, http_root, monkeypatch, bad_member):
    serve, url, _ = http_root
    z = serve / "ml-100k.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t2\t3\t4\n")
        zf.writestr(zipfile.ZipInfo(bad_member), "owned")
    pin(monkeypatch, "ml-100k", md5(z))
    root = tmp_path / "a" / "b"
    with pytest.raises(DatasetFormatError, match="unsafe member path"):
        download_movielens("ml-100k", root, base_url=url)
    assert not list(tmp_path.rglob("evil.txt")) and not (root / "ml-100k").exists()
    assert leftovers(root) == []


def test_symlink_members_are_refused(tmp_path):
    z = tmp_path / "s.zip"
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo("ml-1m/ratings.dat")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    (tmp_path / "out").mkdir()
    with pytest.raises(DatasetFormatError, match="symbolic link"):
        safe_extract(z, tmp_path / "out", "ml-1m")


def test_corrupted_local_archive(tmp_path):
    good = csv_zip(tmp_path / "good.zip", folder="ml-latest")
    data = bytearray(good.read_bytes())
    start = data.find(b"ml-latest/ratings.csv") + len("ml-latest/ratings.csv")
    for k in range(start + 5, start + 25):
        data[k] ^= 0xFF
    bad = tmp_path / "ml-latest.zip"
    bad.write_bytes(bytes(data))
    (tmp_path / "out").mkdir()
    with pytest.raises(DatasetFormatError, match="ml-latest.zip"):
        safe_extract(bad, tmp_path / "out", "ml-latest")
    (tmp_path / "trunc.zip").write_bytes(good.read_bytes()[:100])
    with pytest.raises(DatasetFormatError, match="not a valid zip archive"):
        safe_extract(tmp_path / "trunc.zip", tmp_path / "out", "ml-latest")
    assert os.listdir(tmp_path / "out") == []


def test_local_zip_is_used_without_network(tmp_path, closed_port_url, monkeypatch):
    csv_zip(tmp_path / "ml-latest.zip")  # unpinned release: a user's zip is taken as is
    ds = load_dataset("ml-latest", root=tmp_path, base_url=closed_port_url, download=False)
    assert ds.n_users == 3
    pin(monkeypatch, "ml-20m", "0" * 32)
    csv_zip(tmp_path / "ml-20m.zip", folder="ml-20m")
    with pytest.raises(ChecksumError, match="ml-20m.zip: MD5"):
        load_dataset("ml-20m", root=tmp_path, download=False)


def test_offline_error_says_what_to_fetch_and_where(tmp_path, closed_port_url):
    with pytest.raises(DownloadError) as e:
        load_dataset("ml-1m", root=tmp_path, base_url=closed_port_url)
    msg = str(e.value)
    assert f"{closed_port_url}/ml-1m.zip" in msg and str(tmp_path / "ml-1m.zip") in msg
    assert os.listdir(tmp_path) == []


def test_http_404(tmp_path, http_root, monkeypatch):
    _, url, _ = http_root
    with pytest.raises(DownloadError, match="404|Not Found"):
        download_movielens("ml-10m", tmp_path, base_url=url)


def test_download_false_without_files(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("ml-10m", root=tmp_path, download=False)
    msg = str(e.value)
    assert "https://files.grouplens.org/datasets/movielens/ml-10m.zip" in msg
    assert str(tmp_path / "ml-10M100K" / "ratings.dat") in msg
