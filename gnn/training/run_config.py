"""Where a run's configuration comes from: a JSON file of :class:`TrainConfig` fields, the
checkpoint a run resumes, and the values given on top of either (the CLI's flags).

    config = run_config({"epochs": 50}, config_file="configs/train/ngcf-ml-latest-small.json")
    config = run_config({"checkpoint": "run.pt", "resume": True, "epochs": 500})

A new run is the file's fields with the given values over them. A resumed run is the config its
checkpoint saved, with the file's and the given values over it; those may differ from the
checkpoint's only in :attr:`TrainConfig.RESUMABLE_CHANGES` (anything else is refused, naming the
field). Every error is a ValueError (or FileNotFoundError for a missing checkpoint) naming the
file.
"""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from gnn.training.config import TrainConfig

_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
          "Sequence[int]": (list,)}


def read_config_file(path) -> dict:
    """The fields of a JSON config file (an object of TrainConfig fields); unknown keys and
    values of the wrong type are errors naming the key and the file."""
    path = Path(path)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the config ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg})") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a config is a JSON object of TrainConfig fields, but this "
                         f"holds a {type(values).__name__}")
    annotations = {f.name: f.type for f in fields(TrainConfig)}  # strings: "Optional[int]", ...
    unknown = [key for key in values if key not in annotations]
    if unknown:
        hint = (" (a gnn.reproduce config? run python -m gnn.reproduce FILE)"
                if {"train", "paper"} & set(values) else "")
        raise ValueError(f"{path}: unknown key{'s' * (len(unknown) > 1)} "
                         f"{', '.join(map(repr, unknown))}{hint}; the keys are TrainConfig's "
                         f"fields: {', '.join(annotations)}")
    for key, value in values.items():
        _check_type(path, key, value, str(annotations[key]))
    return values


def _check_type(path, key, value, annotation: str) -> None:
    optional = annotation.startswith("Optional[")
    inner = annotation[len("Optional["):-1] if optional else annotation
    if inner not in _TYPES:  # a field of another kind: TrainConfig checks it
        return
    if value is None and optional:
        return
    ok = isinstance(value, _TYPES[inner]) and (inner == "bool" or not isinstance(value, bool))
    if inner == "Sequence[int]" and ok:
        ok = all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if not ok:
        wanted = {"Sequence[int]": "a list of integers", "float": "a number", "int": "an integer",
                  "str": "a string", "bool": "true or false"}[inner]
        raise ValueError(f"{path}: {key} must be {wanted}{' or null' if optional else ''}, but "
                         f"got {json.dumps(value)}")


def saved_config(path, distributed: bool = False) -> dict:
    """The config a training checkpoint saved: one file (a single-process run), or the folder of
    a distributed run when ``distributed``."""
    from gnn.checkpoint import load_checkpoint, read_run

    if distributed:
        return read_run(path)["config"]
    state = load_checkpoint(path)
    if "optimizer_state" not in state:
        raise ValueError(f"{path}: a saved model, not a training checkpoint: cannot resume")
    return state["config"]


def run_config(given: dict, *, config_file=None, distributed: bool = False) -> TrainConfig:
    """The config of a run from the values ``given`` (TrainConfig fields), over a config file's
    and, when they say ``resume``, over the checkpoint's (module docstring)."""
    values = dict(read_config_file(config_file)) if config_file else {}
    values.update(given)
    if not values.get("resume"):
        return TrainConfig(**values)
    path = values.get("checkpoint")
    if not path:
        raise ValueError("resume needs the checkpoint to continue (--checkpoint PATH)")
    saved = saved_config(path, distributed)
    try:
        config = TrainConfig.from_dict(saved, **values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot resume: {exc}") from None
    config.check_resumable(saved, path)
    return config


__all__ = ["read_config_file", "run_config", "saved_config"]
