"""Where datasets live on disk: the one answer is :func:`data_root`."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

__all__ = ["data_root", "find_dataset_file", "DATA_ENV"]

#: Environment variable naming the dataset folder.
DATA_ENV = "GNN_DATA"


def data_root(root=None) -> Path:
    """The dataset folder: ``root`` if given, else ``$GNN_DATA``, else ``~/.cache/gnn``.

    The folder is not created here (a read-only shared copy must stay untouched); the
    downloader creates it when it needs to write.
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "gnn"


def find_dataset_file(*parts: str, root=None) -> Optional[Path]:
    """``data_root(root) / parts...`` if that file or folder exists, else None.

    For tests and benchmarks that use a real dataset when present and skip otherwise:

        >>> ratings = find_dataset_file("ml-latest-small", "ratings.csv")
    """
    if not parts:
        raise ValueError("find_dataset_file needs at least one path part, e.g. 'gowalla'")
    path = data_root(root).joinpath(*parts)
    return path if path.exists() else None
