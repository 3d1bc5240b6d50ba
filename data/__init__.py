"""Datasets for graph collaborative filtering (installed as ``gnn.data``).

    >>> from gnn.data import load_dataset
    >>> ds = load_dataset("ml-latest-small", split="random", ratios=(0.8, 0.1, 0.1))
    >>> ds.n_users, ds.n_items, len(ds.train[0])

Imports only numpy, torch (through the sampler) and the standard library.
"""
import importlib

from .dataset import Interactions, SplitDataset, collapse_duplicates, remap_ids
from .delimited import read_delimited
from .download import download_movielens
from .interactions import UserItemCSR
from .errors import ChecksumError, DatasetFormatError, DatasetNotFoundError, DownloadError
from .load import DATASETS, TEXT_DATASETS, load_dataset, load_interactions, split_interactions
from .movielens import RELEASES
from .paths import data_root

# Written by a colleague in their own files: loaded on first use, so this package imports (and
# the loaders work) whether or not they are present yet, and torch loads only with the sampler.
_LAZY = {
    "split_random": ".splits",
    "split_temporal": ".splits",
    "split_leave_one_out": ".splits",
    "UniformNegativeSampler": ".sampler",
}

__all__ = [
    "Interactions", "SplitDataset", "UserItemCSR", "load_dataset", "load_interactions", "split_interactions",
    "data_root", "download_movielens", "read_delimited", "remap_ids", "collapse_duplicates",
    "DATASETS", "TEXT_DATASETS", "RELEASES",
    "DatasetFormatError", "DatasetNotFoundError", "DownloadError", "ChecksumError",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
