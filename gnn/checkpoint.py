"""Files written atomically and read without unpickling arbitrary objects.

A file is a plain dict of tensors, numbers, strings, lists and dicts with a ``"format"`` entry
(a training checkpoint, or a model from :func:`gnn.save_model`). It is written to a temporary
file in the same folder, flushed to disk, then renamed over the target: a run killed mid-write
leaves the previous file intact. It is read with ``torch.load(weights_only=True)``, which refuses
anything but those plain types, so a file from elsewhere cannot run code.
"""
from __future__ import annotations

import json
import os
import shlex
import tempfile
from pathlib import Path
from typing import Optional

import torch

FORMAT = "gnn-checkpoint-v1"
KNOWN_FORMATS = (FORMAT, "gnn-model-v1")
DISTRIBUTED_FORMAT = "gnn-distributed-checkpoint-v1"  # run.json of a folder (gnn.distributed)


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
    if is_checkpoint_folder(path):
        raise ValueError(f"{path} is a distributed checkpoint folder (written by a torchrun run); "
                         f"one process reads a file: convert it with "
                         f"{conversion_command(path)}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a checkpoint file")
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


def read_run(path) -> dict:
    """``run.json`` of a distributed run's checkpoint folder (gnn/distributed/checkpoint.py);
    errors name the path."""
    path = Path(path)
    run_file = path / "run.json"
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_file():
        raise ValueError(f"{path} is a single-process checkpoint file; a distributed run "
                         f"resumes from the folder of a distributed run")
    if not run_file.is_file():
        raise ValueError(f"{path}: not a distributed checkpoint folder (no run.json)")
    try:
        run = json.loads(run_file.read_text())
    except ValueError as exc:
        raise ValueError(f"{run_file}: not valid JSON ({exc})") from None
    if run.get("format") != DISTRIBUTED_FORMAT:
        raise ValueError(f"{path}: expected format {DISTRIBUTED_FORMAT!r}, but got "
                         f"{run.get('format')!r}")
    return run


def is_checkpoint_folder(path) -> bool:
    """Whether ``path`` is the folder of a distributed run's checkpoint (gnn.distributed)."""
    return Path(path).is_dir() and (Path(path) / "run.json").is_file()


def conversion_command(folder) -> str:
    """The command that converts a distributed checkpoint folder to one file, ``FOLDER.pt``."""
    folder = Path(folder)
    out = folder.with_name(folder.name + ".pt")
    folder, out = shlex.quote(str(folder)), shlex.quote(str(out))
    return f"python -m gnn.distributed.checkpoint {folder} {out}"


def describe(path) -> Optional[str]:
    """What the gnn file or checkpoint folder at ``path`` holds, in words; None when it is
    neither (or unreadable)."""
    try:
        if is_checkpoint_folder(path):
            run = read_run(path)
            return (f"the checkpoint of a distributed {run['config']['model']!r} run after epoch "
                    f"{run['epoch']}")
        state = load_checkpoint(path)
    except (ValueError, OSError, KeyError, TypeError):
        return None
    if state.get("format") == FORMAT:
        return f"the checkpoint of a {state['config']['model']!r} run after epoch {state['epoch']}"
    return f"a saved {state.get('class')!r} model"


def check_new_checkpoint(path, *, overwrite: bool, folder: bool) -> None:
    """Refuse to start a new run whose checkpoint would replace what is at ``path``: another
    run's checkpoint unless ``overwrite``, and anything that is not a gnn checkpoint of the kind
    the run writes (a folder when ``folder``, else a file) in any case."""
    path = Path(path)
    if not path.exists():
        return
    what = describe(path)
    if what is None:
        raise ValueError(f"{path} exists and is not a gnn checkpoint: choose another checkpoint "
                         f"path (nothing is written over it)")
    if is_checkpoint_folder(path) != folder:
        kind = "one process writes a file" if not folder else "a distributed run writes a folder"
        raise ValueError(f"{path} holds {what}, but {kind}: choose another checkpoint path")
    if not overwrite:
        raise ValueError(f"{path} holds {what}: continue it with --resume (resume=True), or "
                         f"replace it with --overwrite (overwrite=True)")
