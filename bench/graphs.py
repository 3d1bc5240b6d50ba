"""Every graph of the benchmarks, from one loader and one generator.

A *size label* names a graph:

* ``ml-latest-small``, ``gowalla``: the real dataset through the library's own loader,
  ``gnn.data.load_dataset`` (default random 0.8/0.1/0.1 split for MovieLens, the given
  train/test split for Gowalla), from ``gnn.data.data_root()`` (``$GNN_DATA``);
* ``powerlaw-N<n>`` (nnz = 20·n) and ``powerlaw-N<n>-nnz<nnz>``: :mod:`bench.powerlaw`, seed 0,
  for the training part (exactly nnz entries in the adjacency); a test part of about 10 % more
  pairs from the same distribution (seed 1, training pairs removed), so a trainer can evaluate.

The graph a benchmark propagates over is the training adjacency the trainer builds,
``gnn.build_adjacency`` of the dataset's ``train_csr`` (symmetric normalisation unless asked).
Missing data raises ``gnn.data.DatasetNotFoundError``; the pytest fixtures turn that into a skip.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Dict, Optional

import numpy as np
import torch

from bench.powerlaw import powerlaw_interactions
from bench.settings import AVG_DEGREE
from gnn import build_adjacency, load_dataset
from gnn.data import SplitDataset

REAL_DATASETS = ("ml-latest-small", "gowalla")
_POWERLAW = re.compile(r"^powerlaw-N(\d+)(?:-nnz(\d+))?$")


def powerlaw_label(n_nodes: int, nnz: Optional[int] = None) -> str:
    """The size label of a power-law graph (nnz defaults to AVG_DEGREE · N)."""
    if nnz is None or nnz == AVG_DEGREE * n_nodes:
        return f"powerlaw-N{int(n_nodes)}"
    return f"powerlaw-N{int(n_nodes)}-nnz{int(nnz)}"


def parse_powerlaw(label: str):
    """``(N, nnz)`` of a power-law label, or None for any other label."""
    match = _POWERLAW.match(label)
    if match is None:
        return None
    n = int(match.group(1))
    return n, int(match.group(2)) if match.group(2) else AVG_DEGREE * n


@lru_cache(maxsize=None)
def dataset(label: str) -> SplitDataset:
    """The split dataset behind a size label (cached for the process)."""
    sizes = parse_powerlaw(label)
    if sizes is not None:
        n, nnz = sizes
        user, item, n_users, n_items = powerlaw_interactions(n, nnz, seed=0)
        # a held-out part from the same distribution (seed 1, about 10 %, training pairs removed)
        tu, ti, _, _ = powerlaw_interactions(n, 2 * max(1, nnz // 20), seed=1)
        fresh = ~np.isin(tu * n_items + ti, user * n_items + item, assume_unique=True)
        return SplitDataset(name=label, n_users=n_users, n_items=n_items, train=(user, item),
                            valid=None, test=(tu[fresh], ti[fresh]), user_ids=np.arange(n_users),
                            item_ids=np.arange(n_items), protocol="given")
    if label == "gowalla":
        return load_dataset("gowalla", split="given", download=False)
    if label in REAL_DATASETS:
        return load_dataset(label, download=False)
    raise ValueError(f"unknown size label {label!r}: expected one of {REAL_DATASETS}, "
                     f"'powerlaw-N<n>' or 'powerlaw-N<n>-nnz<nnz>'")


@lru_cache(maxsize=None)
def host_graph(label: str, norm: str = "sym", self_loops: bool = False):
    """The normalised training adjacency of a size label, on the CPU (cached)."""
    ds = dataset(label)
    user, item = ds.train_csr.pairs()
    return build_adjacency(user, item, ds.n_users, ds.n_items, norm=norm, self_loops=self_loops)


_ON_DEVICE: Dict[tuple, object] = {}


def graph(label: str, device, norm: str = "sym", self_loops: bool = False):
    """:func:`host_graph` on ``device``; on CUDA one graph is kept at a time (memory)."""
    device = torch.device(device)
    if device.type == "cpu":
        return host_graph(label, norm, self_loops)
    key = (label, str(device), norm, self_loops)
    if key not in _ON_DEVICE:
        _ON_DEVICE.clear()
        _ON_DEVICE[key] = host_graph(label, norm, self_loops).to(device)
    return _ON_DEVICE[key]


def release_device_graphs() -> None:
    """Drop the cached device graph (before a stage that needs the whole device memory)."""
    _ON_DEVICE.clear()


def fixed_batch(ds: SplitDataset, device, batch: int = 2048, seed: int = 0):
    """``(u, i, j)``: ``batch`` training pairs of ``ds`` and uniform random items, seeded
    (a fixed batch for timing one training step; sampling is timed on its own)."""
    user, item = ds.train_csr.pairs()
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randint(len(user), (batch,), generator=gen).numpy()
    j = torch.randint(ds.n_items, (batch,), generator=gen)
    return torch.from_numpy(user[pick]).to(device), torch.from_numpy(item[pick]).to(device), j.to(device)
