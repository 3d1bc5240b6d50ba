"""Helpers of the command-line tests: small rating files and running ``python -m gnn.…``."""
import csv
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def synthetic_ratings(path, n_users=120, n_items=90, per_user=25, seed=0):
    """A ``user,item,rating,timestamp`` file with popularity skew; original ids are not the
    indices (users from 7, items from 1001)."""
    rng = np.random.default_rng(seed)
    lines = ["user,item,rating,timestamp"]
    for u in range(n_users):
        items = np.unique(np.minimum(rng.zipf(1.3, per_user), n_items) + 1000)
        for t, i in enumerate(items):
            lines.append(f"{u + 7},{i},{rng.integers(1, 6)},{1_000_000 + t}")
    path.write_text("\n".join(lines) + "\n")
    return path


def rated_items(path, user_column="user", item_column="item"):
    """``{user id: {item ids}}`` of a CSV with a header, read with the csv module (independent of
    the library's parser)."""
    out = defaultdict(set)
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out[int(row[user_column])].add(int(row[item_column]))
    return out


def movie_titles(path):
    """``{movieId: title}`` of a MovieLens movies.csv."""
    with open(path, newline="", encoding="utf-8") as f:
        return {int(row["movieId"]): row["title"] for row in csv.DictReader(f)}


def run_module(module, *args, **kwargs):
    """``python -m module args`` from the project root; returns the CompletedProcess (text)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, **kwargs)


def start_module(module, *args):
    """``python -m module args`` started in the background (stdout and stderr discarded)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", module, *map(str, args)], cwd=PROJECT_ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
