"""Reproduction configs: the schema, its validation, and where a config's dataset is found.

A config is a JSON object (see configs/gowalla/ and docs/REPRODUCE.md):

* ``model``: a name of the model registry (:data:`gnn.models.MODELS` or ``BASELINES``);
  ``dataset``: a name or folder with ``train.txt``/``test.txt`` (found under ``--data-root``,
  else ``gnn.data.data_root()``: ``$GNN_DATA`` or ``~/.cache/gnn``);
* ``train``: fields of :class:`gnn.TrainConfig` (not ``model``, ``dataset``, ``split``,
  ``device`` or other run-time fields, and not ``patience``: there is no validation split);
* ``itemknn``: ``k``, ``shrink``, ``block_size``, ``eval_chunk`` (itemknn configs only);
* ``training_free``: ``true`` for a method without a training loop (required for the graph
  filters, optional for itemknn, false or absent otherwise); a graph filter's own section is
  named after it (``gfcf``, ``bspm``: the keyword arguments of
  :mod:`gnn.models.graph_filters`' classes, checked by constructing the model);
* ``paper``: the published ``recall@20`` / ``ndcg@20`` (numbers or null) and their ``source``;
* optional ``name``, ``description``, ``notes``, ``target`` (``max_seconds``,
  ``min_epochs_per_second``: what a run must meet on the GPU; ``max_peak_rss_mb``).
"""
from __future__ import annotations

import inspect
import json
import math
from dataclasses import fields
from pathlib import Path
from typing import Optional

from gnn.data import data_root as default_root
from gnn.models import BASELINES, MODELS
from gnn.models.graph_filters import FILTERS, GraphFilter
from gnn.training import TrainConfig

#: Every model a config may name: the registry's trained models and baselines, and the graph
#: filters (gnn.models.graph_filters.FILTERS until the registry lists them).
KNOWN_MODELS = tuple(MODELS) + tuple(BASELINES) + tuple(f for f in FILTERS if f not in BASELINES)
#: Models without a training loop: their configs carry "training_free": true.
TRAINING_FREE = tuple(BASELINES) + tuple(FILTERS)
TOP_KEYS = {"name", "model", "dataset", "description", "notes", "train", "itemknn", "paper", "target",
            "training_free", *FILTERS}
REQUIRED_KEYS = ("model", "dataset", "paper")
# TrainConfig fields a config may not set: the run decides them, or they mean nothing here.
RUNTIME_FIELDS = {
    "model": "set it at the top level of the config",
    "dataset": "set it at the top level of the config",
    "data_root": "use --data-root",
    "split": "the paper protocol is always split='given'",
    "device": "use --device",
    "checkpoint": "not used by gnn.reproduce",
    "resume": "not used by gnn.reproduce",
    "json": "use --out",
    "progress": "use --progress",
    "min_rating": "the text format has no ratings",
    "patience": "without a validation split there is no early stopping",
}
ITEMKNN_KEYS = {"k": int, "shrink": (int, float), "block_size": int, "eval_chunk": int}
PAPER_KEYS = {"recall@20", "ndcg@20", "source", "epochs", "settings"}
TARGET_KEYS = {"max_seconds", "min_epochs_per_second", "max_peak_rss_mb"}
MAIN = ("recall@20", "ndcg@20")


class ConfigError(ValueError):
    """A reproduction config that is malformed; the message names the file and the key."""


# -- configs -------------------------------------------------------------------------------------
def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def load_config(path) -> dict:
    """Read and validate a reproduction config; returns the dict with ``name`` filled in."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror or exc})") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                          f"{exc.msg})") from None
    validate_config(config, str(path))
    config = dict(config)
    config.setdefault("name", path.stem)
    return config


def validate_config(config, where: str = "config") -> None:
    """Raise :class:`ConfigError` unless ``config`` follows the schema of the module docstring."""
    def fail(message):
        raise ConfigError(f"{where}: {message}")

    def check_object(value, allowed, name):
        prefix = f"{name}: " if name else ""
        if not isinstance(value, dict):
            fail(f"{name or 'the config'} must be a JSON object, but got {type(value).__name__}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            fail(f"{prefix}unknown key(s) {unknown}; allowed: {sorted(allowed)}")

    check_object(config, TOP_KEYS, "")
    for key in REQUIRED_KEYS:
        if key not in config:
            fail(f"missing required key {key!r}")
    model = config["model"]
    if model not in KNOWN_MODELS:
        fail(f"model must be one of {list(KNOWN_MODELS)}, but got {model!r}")
    if not isinstance(config["dataset"], str) or not config["dataset"]:
        fail(f"dataset must be a non-empty string, but got {config['dataset']!r}")
    if "name" in config and (not isinstance(config["name"], str) or not config["name"]
                             or any(c in config["name"] for c in "/\\ ")):
        fail(f"name must be a non-empty string without slashes or spaces, but got {config['name']!r}")

    paper = config["paper"]
    check_object(paper, PAPER_KEYS, "paper")
    for key in MAIN:
        value = paper.get(key)
        if value is not None and not (_is_number(value) and 0 <= value <= 1):
            fail(f"paper.{key} must be a number in [0, 1] or null, but got {value!r}")

    target = config.get("target", {})
    check_object(target, TARGET_KEYS, "target")
    for key, value in target.items():
        if not (_is_number(value) and value > 0):
            fail(f"target.{key} must be a positive number, but got {value!r}")

    free = config.get("training_free", model in TRAINING_FREE)
    if not isinstance(free, bool):
        fail(f"training_free must be true or false, but got {free!r}")
    if free != (model in TRAINING_FREE):
        fail(f"training_free must be {str(model in TRAINING_FREE).lower()} for model {model!r} "
             f"({'it has no training loop' if model in TRAINING_FREE else 'it is trained'})")
    for name in ("itemknn", *FILTERS):
        if name in config and name != model:
            fail(f"an {name!r} section only goes with model {name!r}, not {model!r}")
    if model in FILTERS:
        _validate_filter(config, model, fail)
        return
    if model == "itemknn":
        if "train" in config:
            fail("an itemknn config has no 'train' section (it is not trained by gradient "
                 "descent); put k / shrink in 'itemknn'")
        knn = config.get("itemknn", {})
        if not isinstance(knn, dict):
            fail(f"itemknn must be an object, but got {type(knn).__name__}")
        for key, value in knn.items():
            if key not in ITEMKNN_KEYS:
                fail(f"itemknn: unknown key {key!r}; allowed: {sorted(ITEMKNN_KEYS)}")
            ok = (_is_number(value) and isinstance(value, ITEMKNN_KEYS[key])
                  and (value >= 0 if key == "shrink" else value >= 1))
            if not ok:
                kind = "a number >= 0" if key == "shrink" else "an int >= 1"
                fail(f"itemknn.{key} must be {kind}, but got {value!r}")
        return

    train = config.get("train")
    if not isinstance(train, dict):
        fail(f"a {model} config needs a 'train' object with the training settings")
    allowed = {f.name for f in fields(TrainConfig)}
    for key in train:
        if key in RUNTIME_FIELDS:
            fail(f"train.{key} cannot be set in a reproduction config: {RUNTIME_FIELDS[key]}")
        if key not in allowed:
            fail(f"train: unknown key {key!r}; allowed: {sorted(allowed - set(RUNTIME_FIELDS))}")
    if "epochs" not in train:
        fail("train.epochs is required: the paper protocol runs a fixed number of epochs")
    try:  # TrainConfig's own checks (ranges, choices), with the run-time fields filled in
        TrainConfig(model=model, dataset=config["dataset"], split="given", device="cpu",
                    progress=False, **train)
    except (TypeError, ValueError) as exc:
        fail(f"train: {exc}")


def _validate_filter(config: dict, model: str, fail) -> None:
    """A graph filter's config: ``"training_free": true``, no ``train``, and its own section
    holding keyword arguments of its class (validated by constructing the model)."""
    if "training_free" not in config:
        fail(f"a {model} config must say \"training_free\": true (the filter has no training loop)")
    if "train" in config:
        fail(f"a {model} config has no 'train' section (it is not trained); put its "
             f"hyperparameters in {model!r}")
    section = config.get(model, {})
    if not isinstance(section, dict):
        fail(f"{model} must be an object, but got {type(section).__name__}")
    cls = FILTERS[model]
    allowed = {name for klass in (cls, GraphFilter)
               for name in inspect.signature(klass.__init__).parameters} - {"self", "kwargs"}
    for key in section:
        if key not in allowed:
            fail(f"{model}: unknown key {key!r}; allowed: {sorted(allowed)}")
    try:
        cls(**section)
    except (TypeError, ValueError) as exc:
        fail(f"{model}: {exc}")


# -- data -----------------------------------------------------------------------------------------
def resolve_dataset(dataset: str, data_root: Optional[str] = None) -> Path:
    """The folder with ``train.txt``/``test.txt`` for ``dataset`` (a name or a path).

    Looked for, in order: ``dataset`` itself when it is a path; then ``--data-root`` (the folder
    itself, then ``<root>/<dataset>``), else ``gnn.data.data_root()/<dataset>``.
    """
    candidates = []
    path = Path(dataset).expanduser()
    if path.is_dir() or len(path.parts) > 1 or dataset.startswith("."):
        candidates.append(path)
    if data_root is not None:
        root = Path(data_root).expanduser()
        candidates += [root, root / dataset]
    else:
        candidates.append(default_root() / dataset)
    for folder in candidates:
        if (folder / "train.txt").is_file() and (folder / "test.txt").is_file():
            return folder
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"{dataset}: no folder with train.txt and test.txt found (tried {tried}); "
                            f"pass --data-root or set $GNN_DATA")


def output_stem(config: dict, device_type: str, epochs_override: Optional[int]) -> str:
    """``<name>-<device>``, plus ``-<N>ep`` when ``--epochs`` changes the schedule."""
    stem = f"{config['name']}-{device_type}"
    if epochs_override is not None and epochs_override != config.get("train", {}).get("epochs"):
        stem += f"-{epochs_override}ep"
    return stem
