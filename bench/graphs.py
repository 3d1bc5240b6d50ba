"""Every graph of the benchmarks, named by a size label, from one loader and one generator.

* ``ml-latest-small``, ``gowalla``: ``gnn.load_dataset`` (MovieLens's random 0.8/0.1/0.1 split,
  Gowalla's given split) from ``gnn.data.data_root()`` ($GNN_DATA);
* ``powerlaw-N<n>`` (nnz = 20·n) or ``powerlaw-N<n>-nnz<m>``: :func:`powerlaw_interactions`,
  seed 0, exactly nnz entries; a test part of about 10 % more pairs (seed 1, training pairs
  removed) so that a trainer can evaluate.

A benchmark propagates over the adjacency the trainer builds, ``gnn.build_adjacency`` of the
training pairs. Sizes: GNN_BENCH_SIZES (a preset, tiny | cpu | gpu, or a comma list of size
labels) and GNN_BENCH_POWERLAW ("N:nnz,..." extra graphs). ``python -m bench.graphs N NNZ``
prints a power-law graph's degrees.
"""
from __future__ import annotations

import argparse
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from bench.measure import DEVICE, env_list
from gnn import build_adjacency, load_dataset
from gnn.data import SplitDataset

AVG_DEGREE = 20  # nnz = 20·N for the power-law sizes (Gowalla: 22.9·N)
REAL_DATASETS = ("ml-latest-small", "gowalla")
PRESETS = {"tiny": ["ml-latest-small", "powerlaw-N2000"],
           "cpu": [*REAL_DATASETS, "powerlaw-N10000", "powerlaw-N30000", "powerlaw-N100000"],
           "gpu": [*REAL_DATASETS, "powerlaw-N10000", "powerlaw-N100000", "powerlaw-N1000000"]}
_POWERLAW = re.compile(r"^powerlaw-N(\d+)(?:-nnz(\d+))?$")


def size_preset(benchmark_disabled: bool = False) -> str:
    """``$GNN_BENCH_SIZES`` (a preset or a comma list of size labels), else tiny (timing off: the
    CI smoke run), gpu (CUDA) or cpu."""
    preset = ",".join(env_list("GNN_BENCH_SIZES"))
    if preset and preset not in PRESETS and not all(
            label in REAL_DATASETS or parse_powerlaw(label) for label in preset.split(",")):
        raise ValueError(f"GNN_BENCH_SIZES must be one of {sorted(PRESETS)} or a comma list of "
                         f"size labels (ml-latest-small, gowalla, powerlaw-N<n>[-nnz<m>]), but "
                         f"got {preset!r}")
    return preset or ("tiny" if benchmark_disabled else "gpu" if DEVICE.type == "cuda" else "cpu")


def size_labels(preset: str) -> list:
    """A preset's labels (the real datasets, then power-law graphs) or the labels listed instead,
    then $GNN_BENCH_POWERLAW's graphs ``N:nnz``."""
    extra = [(int(float(n)), int(float(nnz))) for n, nnz in
             (item.split(":") for item in env_list("GNN_BENCH_POWERLAW"))]
    return PRESETS.get(preset, preset.split(",")) + [
        f"powerlaw-N{n}" + (f"-nnz{nnz}" if nnz != AVG_DEGREE * n else "") for n, nnz in extra]


def parse_powerlaw(label: str):
    """``(N, nnz)`` of a power-law label, or None for any other label."""
    match = _POWERLAW.match(label)
    if match is None:
        return None
    n = int(match.group(1))
    return n, int(match.group(2)) if match.group(2) else AVG_DEGREE * n


def powerlaw_interactions(n_nodes: int, nnz: int, *, user_fraction: float = 0.42,
                          user_exponent: float = 0.6, item_exponent: float = 0.6, seed: int = 0,
                          max_rounds: int = 64):
    """``(user, item, n_users, n_items)``: ``nnz / 2`` distinct pairs, sorted, of a bipartite
    Chung–Lu graph with Zipf weights, ``P(u) ∝ (rank_u + 1)^-user_exponent`` (items alike),
    ids shuffled; drawn independently, duplicates collapsed, topped up until exact. Defaults
    fitted to Gowalla (docs/BENCHMARKS.md, "The power-law generator")."""
    if nnz % 2 or nnz <= 0:
        raise ValueError(f"powerlaw_interactions(): nnz must be positive and even, but got {nnz}")
    n_users = max(1, int(round(n_nodes * user_fraction)))
    n_items, target = n_nodes - n_users, nnz // 2
    if n_items < 1 or target > 0.5 * n_users * n_items:
        raise ValueError(f"powerlaw_interactions(): {target} pairs do not fit {n_users} users x "
                         f"{n_items} items at most half full; lower nnz or raise n_nodes")
    rng = np.random.default_rng(seed)
    weights = [np.arange(1, n + 1, dtype=np.float64) ** -float(e)
               for n, e in ((n_users, user_exponent), (n_items, item_exponent))]
    p_user, p_item = (w[rng.permutation(w.size)] / w.sum() for w in weights)
    keys = np.empty(0, dtype=np.int64)
    for _ in range(max_rounds):
        missing = target - keys.size
        if missing == 0:
            return keys // n_items, keys % n_items, n_users, n_items
        draw = int(missing * 1.1) + 64
        new = rng.choice(n_users, draw, p=p_user) * n_items + rng.choice(n_items, draw, p=p_item)
        new = np.sort(new)
        new = new[np.r_[True, new[1:] != new[:-1]]]  # unique by sort: numpy's hash unique is slower
        new = np.setdiff1d(new, keys, assume_unique=True)
        if new.size > missing:  # a random subset, so that no id range is favoured
            new = rng.choice(new, size=missing, replace=False)
        keys = np.sort(np.concatenate([keys, new]))
    raise RuntimeError(f"powerlaw_interactions(): only {keys.size} of {target} distinct pairs "
                       f"after {max_rounds} rounds; the graph is too dense for its skew")


@lru_cache(maxsize=None)
def dataset(label: str) -> SplitDataset:
    """The split dataset behind a size label (cached; DatasetNotFoundError if data is missing)."""
    sizes = parse_powerlaw(label)
    if sizes is not None:
        n, nnz = sizes
        user, item, n_users, n_items = powerlaw_interactions(n, nnz, seed=0)
        tu, ti, _, _ = powerlaw_interactions(n, 2 * max(1, nnz // 20), seed=1)
        fresh = ~np.isin(tu * n_items + ti, user * n_items + item, assume_unique=True)
        return SplitDataset(name=label, n_users=n_users, n_items=n_items, train=(user, item),
                            valid=None, test=(tu[fresh], ti[fresh]), user_ids=np.arange(n_users),
                            item_ids=np.arange(n_items), protocol="given")
    if label in REAL_DATASETS:
        split = {"split": "given"} if label == "gowalla" else {}
        return load_dataset(label, download=False, **split)
    raise ValueError(f"unknown size label {label!r}: expected ml-latest-small, gowalla, "
                     f"'powerlaw-N<n>' or 'powerlaw-N<n>-nnz<nnz>'")


@lru_cache(maxsize=None)
def host_graph(label: str):
    """The normalised training adjacency of a size label, on the CPU (cached)."""
    ds = dataset(label)
    return build_adjacency(*ds.train_csr.pairs(), ds.n_users, ds.n_items)


_ON_DEVICE: dict = {}


def graph(label: str, device):
    """:func:`host_graph` on ``device``; on CUDA one graph is kept at a time (memory)."""
    device = torch.device(device)
    if device.type == "cpu":
        return host_graph(label)
    if (label, str(device)) not in _ON_DEVICE:
        _ON_DEVICE.clear()
        _ON_DEVICE[(label, str(device))] = host_graph(label).to(device)
    return _ON_DEVICE[(label, str(device))]


def fixed_batch(ds: SplitDataset, device, batch: int = 2048, seed: int = 0):
    """``(u, i, j)``: ``batch`` seeded training pairs and uniform items (sampling timed apart)."""
    user, item = ds.train_csr.pairs()
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randint(len(user), (batch,), generator=gen).numpy()
    j = torch.randint(ds.n_items, (batch,), generator=gen)
    return tuple(torch.as_tensor(t).to(device) for t in (user[pick], item[pick], j))


def write_tiny_datasets(root, n_nodes: int = 120, nnz: int = 1200, seed: int = 0) -> Path:
    """Stand-ins for both datasets in their own file formats (the device run's dry run):
    ``ml-latest-small/{ratings,movies}.csv`` and ``gowalla/{train,test}.txt``."""
    user, item, n_users, n_items = powerlaw_interactions(n_nodes, nnz, seed=seed)
    rng = np.random.default_rng(seed)
    movielens, gowalla = Path(root) / "ml-latest-small", Path(root) / "gowalla"
    for folder in (movielens, gowalla):
        folder.mkdir(parents=True, exist_ok=True)
    ratings = zip(user.tolist(), item.tolist(), (rng.integers(1, 11, user.size) / 2).tolist(),
                  rng.integers(10**9, 1.6 * 10**9, user.size).tolist())
    (movielens / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "".join(
        f"{u + 1},{10 * i + 1},{r:.1f},{t}\n" for u, i, r, t in ratings))
    (movielens / "movies.csv").write_text("movieId,title,genres\n" + "".join(
        f"{10 * i + 1},Movie {i} (2000),Drama\n" for i in range(n_items)))
    test = rng.random(user.size) < 0.2
    for name, keep in (("train.txt", ~test), ("test.txt", test)):
        rows = [" ".join(map(str, [u, *item[keep & (user == u)].tolist()])) for u in range(n_users)]
        (gowalla / name).write_text("\n".join(r for r in rows if " " in r) + "\n")
    return Path(root)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="degree statistics of a generated power-law graph")
    p.add_argument("n_nodes", type=int)
    p.add_argument("nnz", type=int)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    user, item, n_users, n_items = powerlaw_interactions(args.n_nodes, args.nnz, seed=args.seed)
    print(f"N={args.n_nodes} users={n_users} items={n_items} nnz={2 * user.size}")
    for name, ids, n in (("user", user, n_users), ("item", item, n_items)):
        deg = np.sort(np.bincount(ids, minlength=n))[::-1]
        print(f"{name}: mean {deg.mean():.1f}, median {np.median(deg):.0f}, p99 "
              f"{np.percentile(deg, 99):.0f}, max {deg[0]}, zero {(deg == 0).sum()}, top-1% share "
              f"{deg[: max(1, n // 100)].sum() / max(1, deg.sum()):.3f}")
