"""Checkpoints written atomically and read without unpickling arbitrary objects.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts. It is written to a
temporary file in the same folder, flushed to disk, then renamed over the target: a run killed
mid-write leaves the previous checkpoint intact. It is read with ``torch.load(weights_only=True)``,
which refuses anything but those plain types, so a checkpoint from elsewhere cannot run code.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

FORMAT = "gnn-checkpoint-v1"


def save_checkpoint(state: dict, path) -> None:
    """Write ``state`` to ``path`` atomically (temp file + fsync + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated file, foreign pickle, ...
        raise ValueError(f"{path}: not a readable gnn checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a gnn checkpoint (expected format {FORMAT!r})")
    return state
