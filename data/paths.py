"""Where datasets live on disk."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_root", "DATA_ENV"]

#: Environment variable naming the dataset cache folder.
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
