"""Measure gnn.data's ratings parser: real ml-latest-small and a generated 25M-row ratings.csv.

    python -m bench.parse_speed [--rows 25000000] [--tmp /tmp/gnn_parse_speed]

The large file mimics ml-25m (about 153 ratings per user, movieId <= 209171, half-star
ratings, 10-digit timestamps, sorted by user then movie, LF line ends) and is generated once into --tmp (never commit it).
Prints rows/s of the raw parse (read_columns) and of the full load (load_interactions:
parse + range checks + id remapping + duplicate check). ml-latest-small is read from
``gnn.data.data_root()`` ($GNN_DATA) unless ``--small`` names its folder.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from gnn.data import data_root, load_interactions
from gnn.data.fastcsv import read_columns

NAMES = ["userId", "movieId", "rating", "timestamp"]


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """Write a ratings.csv like ml-25m's (header, sorted by user then movie) in 1M-row chunks."""
    rng = np.random.default_rng(seed)
    per_user = 153  # ml-25m's mean ratings per user
    tmp = path.with_suffix(".part")
    with open(tmp, "w", newline="") as f:
        f.write("userId,movieId,rating,timestamp\n")
        done = 0
        user = 1
        while done < rows:
            n = min(1_000_000, rows - done)
            users = rng.integers(user, user + max(n // per_user, 1), n)
            movies = rng.integers(1, 209172, n)
            order = np.lexsort((movies, users))  # MovieLens order: by user, then movie
            users, movies = users[order], movies[order]
            fresh = np.ones(n, dtype=bool)  # no repeated (user, movie), as in MovieLens
            fresh[1:] = (users[1:] != users[:-1]) | (movies[1:] != movies[:-1])
            users, movies = users[fresh], movies[fresh]
            n = len(users)
            user = int(users[-1]) + 1
            ratings = rng.integers(1, 11, n) / 2
            ts = rng.integers(789_652_009, 1_574_327_703, n)
            f.write("".join(f"{u},{m},{r:.1f},{t}\n" for u, m, r, t in
                            zip(users.tolist(), movies.tolist(), ratings[:n].tolist(), ts[:n].tolist())))
            done += n
    os.replace(tmp, path)


def timed(fn, repeat: int):
    """Best wall time of ``repeat`` runs, and the CPU time of that run (the machine may be shared)."""
    best, cpu = float("inf"), float("inf")
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        wall = time.perf_counter() - t
        if wall < best:
            best, cpu = wall, time.process_time() - c
    timed.cpu = cpu
    return best, out


def cpu_note(n: int) -> str:
    return f"[CPU time {timed.cpu:.2f} s = {n / timed.cpu / 1e6:.2f} M rows/s; load average {os.getloadavg()[0]:.1f}]"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=25_000_000)
    ap.add_argument("--tmp", default="/tmp/gnn_parse_speed")
    ap.add_argument("--small", default=None,
                    help="ml-latest-small folder (default: gnn.data.data_root()/ml-latest-small)")
    args = ap.parse_args(argv)

    small = Path(args.small) if args.small else data_root() / "ml-latest-small"
    if (small / "ratings.csv").is_file():
        sec, cols = timed(lambda: read_columns(small / "ratings.csv", ",", "iifi", NAMES, skip_lines=1), 5)
        print(f"ml-latest-small ratings.csv: {len(cols[0]):,} rows parsed in {sec:.3f} s "
              f"({len(cols[0]) / sec / 1e6:.2f} M rows/s) {cpu_note(len(cols[0]))}")
        sec, inter = timed(lambda: load_interactions(small), 3)
        print(f"ml-latest-small load_interactions (ratings + movies + remap): {sec:.3f} s")
    else:
        print(f"ml-latest-small not found in {small}; skipped", file=sys.stderr)

    big = Path(args.tmp) / f"ratings-{args.rows}.csv"
    big.parent.mkdir(parents=True, exist_ok=True)
    if not big.is_file():
        t = time.perf_counter()
        generate(big, args.rows)
        print(f"generated {big} ({big.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
    size = big.stat().st_size
    sec, cols = timed(lambda: read_columns(big, ",", "iifi", NAMES, skip_lines=1), 2)
    n = len(cols[0])
    print(f"{n:,}-row ratings.csv ({size / 1e6:.0f} MB): parsed in {sec:.2f} s = "
          f"{n / sec / 1e6:.2f} M rows/s, {size / sec / 1e6:.0f} MB/s {cpu_note(n)}")
    del cols
    sec, inter = timed(lambda: load_interactions(big), 1)
    print(f"load_interactions (parse + checks + remap + duplicates): {sec:.2f} s = "
          f"{n / sec / 1e6:.2f} M rows/s {cpu_note(n)}\n  -> {inter}")


if __name__ == "__main__":
    main()
