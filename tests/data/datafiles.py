"""Helpers for the gnn.data tests: small generated MovieLens folders, a local HTTP server.

A helper module, not a test module and not a second conftest.py: test modules import what they
use from here explicitly (``from datafiles import ...``). Real datasets come from the
``dataset_file`` fixture of tests/conftest.py (``gnn.data.data_root()``).
"""
import functools
import http.server
import socket
import threading
from pathlib import Path

import pytest

# Five ratings by three users over four movies, in the order MovieLens files use.
RATINGS = [(1, 10, 4.0, 964982703), (1, 20, 3.5, 964981247), (2, 10, 5.0, 964982224),
           (2, 30, 0.5, 964983815), (3, 40, 2.0, 964982931)]
TITLES = {10: "Toy Story (1995)", 20: "Heat, The (1995)", 30: "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)",
          40: "Léon: The Professional (1994)"}
WHOLE = [(u, i, int(r) if r >= 1 else 1, t) for u, i, r, t in RATINGS]  # 1..5 stars for 100k / 1m


def write_csv_release(folder: Path, ratings=RATINGS, titles=TITLES, crlf=True) -> Path:
    """A ratings.csv + movies.csv release (ml-latest-small, ml-20m, ml-25m, ml-32m, ml-latest)."""
    folder.mkdir(parents=True, exist_ok=True)
    nl = "\r\n" if crlf else "\n"
    lines = ["userId,movieId,rating,timestamp"] + [f"{u},{i},{r:.1f},{t}" for u, i, r, t in ratings]
    (folder / "ratings.csv").write_bytes((nl.join(lines) + nl).encode())
    movies = ["movieId,title,genres"]
    for k, title in titles.items():
        movies.append(f'{k},"{title}",Comedy|Drama' if "," in title else f"{k},{title},Comedy")
    (folder / "movies.csv").write_bytes((nl.join(movies) + nl).encode("utf-8"))
    return folder


def write_dat_release(folder: Path, ratings, titles=TITLES, encoding="latin-1") -> Path:
    """ratings.dat + movies.dat (ml-1m: Latin-1, ml-10m: UTF-8)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_text("".join(f"{u}::{i}::{r:g}::{t}\n" for u, i, r, t in ratings))
    (folder / "movies.dat").write_bytes("".join(f"{k}::{v}::Comedy|Drama\n" for k, v in titles.items()).encode(encoding))
    return folder


def write_100k_release(folder: Path, ratings=WHOLE, titles=TITLES) -> Path:
    """u.data (tab separated, no header) + u.item (| separated, Latin-1)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in ratings))
    rows = [f"{k}|{v}|01-Jan-1995||http://us.imdb.com/x|" + "|".join(["0"] * 19) for k, v in titles.items()]
    (folder / "u.item").write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    return folder


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path):
    """``(serve_dir, base_url, requests)``: files in serve_dir are served on 127.0.0.1."""
    serve = tmp_path / "www"
    serve.mkdir()
    requests = []

    class Handler(_QuietHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(serve)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield serve, f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port_url():
    """A base URL on 127.0.0.1 where nothing listens (offline)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"
