"""Files written atomically and read without unpickling arbitrary objects.

A file is a plain dict of tensors, numbers, strings, lists and dicts with a ``"format"`` entry
(a training checkpoint, or a model from :func:`gnn.save_model`). It is written to a temporary
file in the same folder, flushed to disk, then renamed over the target: a run killed mid-write
leaves the previous file intact. It is read with ``torch.load(weights_only=True)``, which refuses
anything but those plain types, so a file from elsewhere cannot run code.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

FORMAT = "gnn-checkpoint-v1"
KNOWN_FORMATS = (FORMAT, "gnn-model-v1")


def save_checkpoint(state: dict, path) -> None:
    """Write ``state`` to ``path`` atomically (temp file + fsync + rename); a state without a
    ``"format"`` entry is marked as a training checkpoint."""
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
    """Read a file written by :func:`save_checkpoint`; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated file, foreign pickle, ...
        raise ValueError(f"{path}: not a readable gnn checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or state.get("format") not in KNOWN_FORMATS:
        raise ValueError(f"{path}: not a gnn checkpoint or model (expected format one of "
                         f"{KNOWN_FORMATS})")
    return state
