"""Tiny stand-ins for the real datasets, in their own file formats (for the device run's dry run).

``write_tiny_datasets(root)`` writes ``root/ml-latest-small/{ratings,movies}.csv`` (MovieLens
csv layout) and ``root/gowalla/{train,test}.txt`` (one line per user: the user id, then item
ids), drawn from bench/powerlaw.py with a fixed seed, so that every stage of the device run
reads them through the library's own loaders exactly as it reads the real files.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.powerlaw import powerlaw_interactions


def write_tiny_datasets(root, n_nodes: int = 120, nnz: int = 1200, seed: int = 0) -> Path:
    root = Path(root)
    user, item, n_users, n_items = powerlaw_interactions(n_nodes, nnz, seed=seed)
    rng = np.random.default_rng(seed)

    movielens = root / "ml-latest-small"
    movielens.mkdir(parents=True, exist_ok=True)
    lines = ["userId,movieId,rating,timestamp"]
    lines += [f"{u + 1},{10 * i + 1},{r:.1f},{t}" for u, i, r, t in
              zip(user.tolist(), item.tolist(), (rng.integers(1, 11, user.size) / 2).tolist(),
                  rng.integers(10**9, 1.6 * 10**9, user.size).tolist())]
    (movielens / "ratings.csv").write_text("\n".join(lines) + "\n")
    titles = ["movieId,title,genres"] + [f"{10 * i + 1},Movie {i} (2000),Drama" for i in range(n_items)]
    (movielens / "movies.csv").write_text("\n".join(titles) + "\n")

    gowalla = root / "gowalla"
    gowalla.mkdir(parents=True, exist_ok=True)
    test = rng.random(user.size) < 0.2
    for name, keep in (("train.txt", ~test), ("test.txt", test)):
        rows = []
        for u in range(n_users):
            items = item[keep & (user == u)]
            if items.size:
                rows.append(" ".join(str(x) for x in [u, *items.tolist()]))
        (gowalla / name).write_text("\n".join(rows) + "\n")
    return root
