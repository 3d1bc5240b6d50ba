"""Datasets for graph collaborative filtering (installed as ``gnn.data``).

    >>> from gnn.data import load_dataset, PositiveSampler, UniformNegativeSampler
    >>> ds = load_dataset("ml-latest-small", split="random", ratios=(0.8, 0.1, 0.1))
    >>> ds.n_users, ds.n_items, ds.train_csr.nnz
    >>> positives = PositiveSampler(ds.train_csr, mode="pair")
    >>> negatives = UniformNegativeSampler(ds.train_csr, seed=0)

Files: MovieLens releases, the NGCF/LightGCN text format, RecBole ``.inter`` files and delimited
files with integer or text ids; ``on_bad_line="skip"`` skips malformed lines (:class:`BadLines`).
Layers: files -> :class:`Interactions` (one log, ids remapped) -> :class:`SplitDataset`
(train / valid / test) -> :class:`UserItemCSR` per part (``ds.train_csr`` ...) -> samplers.
Imports numpy, torch (samplers, device copies) and the standard library only.
"""
from .atomic import read_atomic
from .badlines import BadLines
from .dataset import Interactions, SplitDataset, collapse_duplicates, remap_ids
from .delimited import read_delimited
from .download import download_movielens
from .errors import ChecksumError, DatasetFormatError, DatasetNotFoundError, DownloadError
from .interactions import UserItemCSR
from .load import DATASETS, TEXT_DATASETS, load_dataset, load_interactions, split_interactions
from .movielens import RELEASES
from .paths import data_root, find_dataset_file
from .positives import SAMPLING_MODES, PositiveSampler
from .sampler import UniformNegativeSampler
from .splits import split_leave_one_out, split_random, split_temporal
from .tokens import TokenIds

__all__ = [
    "Interactions", "SplitDataset", "UserItemCSR", "load_dataset", "load_interactions",
    "split_interactions", "split_random", "split_temporal", "split_leave_one_out",
    "UniformNegativeSampler", "PositiveSampler", "SAMPLING_MODES",
    "data_root", "find_dataset_file", "download_movielens", "read_delimited", "read_atomic",
    "TokenIds", "BadLines", "remap_ids",
    "collapse_duplicates", "DATASETS", "TEXT_DATASETS", "RELEASES",
    "DatasetFormatError", "DatasetNotFoundError", "DownloadError", "ChecksumError",
]
