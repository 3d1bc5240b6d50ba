"""Reproduce a paper run from a versioned config: ``python -m gnn.reproduce CONFIG [overrides]``.

Examples::

    python -m gnn.reproduce configs/gowalla/lightgcn.json                # the paper schedule
    python -m gnn.reproduce configs/gowalla/ngcf.json --epochs 2 --device cpu   # a short probe
    python -m gnn.reproduce configs/gowalla/itemknn.json                 # CPU, about 2 minutes

The paper protocol (NGCF, LightGCN): train on ``train.txt``, no validation split, a fixed number
of epochs, full-ranking evaluation on ``test.txt`` with each user's training items excluded every
``eval_every`` epochs (recall@20 and NDCG@20 with IDCG over ``min(20, |T_u|)``), and the metrics
of the last epoch reported. Written to ``--out`` (default ``results/reproduce/``), named after the
config and the device (``-<N>ep`` added when ``--epochs`` shortens or lengthens the schedule):

* ``<name>-<device>.json``: the run's summary (gnn.training.Trainer.summary() plus the config,
  the paper's figures, the comparison, wall time, card, git commit);
* ``<name>-<device>-curve.json``: the learning curve (loss per epoch, metrics per evaluation);
* ``<name>-<device>-curve.png``: the same curve, when matplotlib is importable.

A config is a JSON object (see configs/gowalla/ and docs/REPRODUCE.md):

* ``model``: ``ngcf``, ``lightgcn``, ``mf`` or ``itemknn``; ``dataset``: a name or folder with
  ``train.txt``/``test.txt`` (found under ``--data-root``, ``$GNN_DATA``, ``~/.cache/gnn`` or the
  repository's ``../shared/data``);
* ``train``: fields of :class:`gnn.training.TrainConfig` (not ``model``, ``dataset``, ``split``,
  ``device`` or other run-time fields, and not ``patience``: there is no validation split);
* ``itemknn``: ``k``, ``shrink``, ``block_size``, ``eval_chunk`` (itemknn configs only);
* ``paper``: the published ``recall@20`` / ``ndcg@20`` (numbers or null) and their ``source``;
* optional ``name``, ``description``, ``notes``, ``target`` (``max_seconds``,
  ``min_epochs_per_second``: what a run must meet on the GPU).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Optional

REPO_ROOT = Path(__file__).resolve().parents[1]
MODELS = ("ngcf", "lightgcn", "mf", "itemknn")
TOP_KEYS = {"name", "model", "dataset", "description", "notes", "train", "itemknn", "paper", "target"}
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
TARGET_KEYS = {"max_seconds", "min_epochs_per_second"}
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
    from gnn.training import TrainConfig

    def fail(message):
        raise ConfigError(f"{where}: {message}")

    if not isinstance(config, dict):
        fail(f"must be a JSON object, but got {type(config).__name__}")
    unknown = sorted(set(config) - TOP_KEYS)
    if unknown:
        fail(f"unknown key(s) {unknown}; allowed: {sorted(TOP_KEYS)}")
    for key in REQUIRED_KEYS:
        if key not in config:
            fail(f"missing required key {key!r}")
    model = config["model"]
    if model not in MODELS:
        fail(f"model must be one of {list(MODELS)}, but got {model!r}")
    if not isinstance(config["dataset"], str) or not config["dataset"]:
        fail(f"dataset must be a non-empty string, but got {config['dataset']!r}")
    if "name" in config and (not isinstance(config["name"], str) or not config["name"]
                             or any(c in config["name"] for c in "/\\ ")):
        fail(f"name must be a non-empty string without slashes or spaces, but got {config['name']!r}")

    paper = config["paper"]
    if not isinstance(paper, dict):
        fail(f"paper must be an object, but got {type(paper).__name__}")
    unknown = sorted(set(paper) - PAPER_KEYS)
    if unknown:
        fail(f"paper: unknown key(s) {unknown}; allowed: {sorted(PAPER_KEYS)}")
    for key in MAIN:
        value = paper.get(key)
        if value is not None and not (_is_number(value) and 0 <= value <= 1):
            fail(f"paper.{key} must be a number in [0, 1] or null, but got {value!r}")

    target = config.get("target", {})
    if not isinstance(target, dict):
        fail(f"target must be an object, but got {type(target).__name__}")
    unknown = sorted(set(target) - TARGET_KEYS)
    if unknown:
        fail(f"target: unknown key(s) {unknown}; allowed: {sorted(TARGET_KEYS)}")
    for key, value in target.items():
        if not (_is_number(value) and value > 0):
            fail(f"target.{key} must be a positive number, but got {value!r}")

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

    if "itemknn" in config:
        fail(f"an 'itemknn' section only goes with model 'itemknn', not {model!r}")
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


# -- data -----------------------------------------------------------------------------------------
def resolve_dataset(dataset: str, data_root: Optional[str] = None) -> Path:
    """The folder with ``train.txt``/``test.txt`` for ``dataset`` (a name or a path).

    Looked for, in order: ``dataset`` itself when it is a path; ``--data-root`` (the folder
    itself, then ``<root>/<dataset>``); else ``$GNN_DATA`` or ``~/.cache/gnn``
    (``gnn.data.data_root()``), then the repository's ``../shared/data``.
    """
    from gnn.data import data_root as default_root

    candidates = []
    if os.sep in dataset or dataset.startswith("."):
        candidates.append(Path(dataset).expanduser())
    if data_root is not None:
        root = Path(data_root).expanduser()
        candidates += [root, root / dataset]
    else:
        candidates += [default_root() / dataset, REPO_ROOT.parent / "shared" / "data" / dataset]
    for folder in candidates:
        if (folder / "train.txt").is_file() and (folder / "test.txt").is_file():
            return folder
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"{dataset}: no folder with train.txt and test.txt found (tried {tried}); "
                            f"pass --data-root or set $GNN_DATA")


# -- run --------------------------------------------------------------------------------------------
def _git_commit() -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _environment(device_name: str) -> dict:
    import numpy
    import torch

    env = {"device": device_name, "torch": torch.__version__, "numpy": numpy.__version__,
           "python": platform.python_version(), "cpu_threads": torch.get_num_threads(),
           "git_commit": _git_commit()}
    try:
        from gnn.kernels import get_backend
        env["kernel_backend"] = get_backend(torch.device("cuda" if device_name.startswith("cuda")
                                                         else "cpu"))
    except Exception:  # the record is informative only
        env["kernel_backend"] = None
    return env


def output_stem(config: dict, device_type: str, epochs_override: Optional[int]) -> str:
    stem = f"{config['name']}-{device_type}"
    if epochs_override is not None and epochs_override != config.get("train", {}).get("epochs"):
        stem += f"-{epochs_override}ep"
    return stem


def compare(config: dict, summary: dict) -> dict:
    """Ours vs the paper for recall@20 / NDCG@20, and the GPU targets where they apply."""
    paper = config["paper"]
    out = {}
    for key in MAIN:
        ours, theirs = summary.get(key), paper.get(key)
        row = {"ours": ours, "paper": theirs}
        if ours is not None and theirs:
            row.update(diff=ours - theirs, relative=ours / theirs - 1, reached=ours >= theirs)
        out[key] = row
    target = config.get("target", {})
    if "max_seconds" in target:
        seconds = summary.get("estimated_full_run_seconds", summary["wall_seconds"])
        out["within_max_seconds"] = seconds <= target["max_seconds"]
    if "min_epochs_per_second" in target and summary.get("epochs_per_second"):
        out["meets_epochs_per_second"] = summary["epochs_per_second"] >= target["min_epochs_per_second"]
    return out


def format_comparison(config: dict, summary: dict) -> str:
    cmp = summary["comparison"]
    if summary.get("probe"):
        done = f"probe of {summary['probe_batches']} batches"
    elif summary.get("epochs") is None:
        done = f"fit {summary.get('fit_seconds', 0):.1f} s, evaluation {summary['eval_seconds']:.1f} s"
    else:
        done = f"{summary['epochs']} epochs"
    lines = [f"{config['name']} ({summary['model']}) on {summary['dataset']}, "
             f"{summary['device']}: {done}, wall {summary['wall_seconds']:.1f} s"]
    if summary.get("sec_per_epoch"):
        lines[0] += (f", {summary['sec_per_epoch']:.3g} s/epoch "
                     f"({summary['epochs_per_second']:.3g} epochs/s)")
    lines.append(f"  {'metric':<10} {'ours':>8} {'paper':>8} {'diff':>9}")
    for key in MAIN:
        row = cmp[key]
        ours = "-" if row["ours"] is None else f"{row['ours']:.4f}"
        paper = "-" if row["paper"] is None else f"{row['paper']:.4f}"
        diff = (f"{row['diff']:+.4f} ({100 * row['relative']:+.1f}%)" if "diff" in row else "")
        lines.append(f"  {key:<10} {ours:>8} {paper:>8} {diff}")
    if summary.get("partial"):
        lines.append(f"  note: {summary['partial']}")
    target = config.get("target", {})
    if "max_seconds" in target:
        what = "estimated full run" if "estimated_full_run_seconds" in summary else "wall"
        lines.append(f"  target: {what} <= {target['max_seconds']:.0f} s: "
                     f"{'yes' if cmp['within_max_seconds'] else 'no'}")
    if "meets_epochs_per_second" in cmp:
        lines.append(f"  target: >= {target['min_epochs_per_second']} epochs/s: "
                     f"{'yes' if cmp['meets_epochs_per_second'] else 'no'}")
    return "\n".join(lines)


def learning_curve(summary: dict) -> dict:
    """Columnar curve: loss and seconds per epoch, test metrics at each evaluation."""
    history = summary.get("history", [])
    evals = [h for h in history if f"test_{MAIN[0]}" in h]
    metric_keys = sorted({k[5:] for h in evals for k in h if k.startswith("test_")})
    return {
        "name": summary["config_name"], "model": summary["model"], "dataset": summary["dataset"],
        "device": summary["device"],
        "epoch": [h["epoch"] for h in history],
        "loss": [h["loss"] for h in history],
        "seconds": [h["seconds"] for h in history],
        "eval_epoch": [h["epoch"] for h in evals],
        **{k: [h[f"test_{k}"] for h in evals] for k in metric_keys},
        "paper": {k: summary["paper"].get(k) for k in MAIN},
    }


def plot_curve(curve: dict, path: Path) -> bool:
    """Write the curve as a PNG; False (nothing written) when matplotlib is not importable."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(curve["epoch"], curve["loss"], color="tab:gray",
                 marker="." if len(curve["epoch"]) <= 50 else None)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("BPR loss (with L2)")
    ax_loss.set_title("training loss")
    for key, color in zip(MAIN, ("tab:blue", "tab:orange")):
        if key in curve:
            ax_metric.plot(curve["eval_epoch"], curve[key], marker=".", color=color, label=f"ours {key}")
        if curve["paper"].get(key) is not None:
            ax_metric.axhline(curve["paper"][key], color=color, linestyle="--",
                              label=f"paper {key} {curve['paper'][key]:.4f}")
    ax_metric.set_xlabel("epoch")
    ax_metric.set_title("test (full ranking, training items excluded)")
    ax_metric.legend(fontsize=8)
    fig.suptitle(f"{curve['name']} on {curve['dataset']} ({curve['device']})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _write_json(obj, path: Path) -> None:
    from gnn.training import write_json
    write_json(obj, path)


def _run_trainer(config: dict, dataset, folder: Path, epochs, device, eval_every, seed,
                 progress, log) -> dict:
    from gnn.training import TrainConfig, Trainer

    train = dict(config["train"])
    if epochs is not None:
        train["epochs"] = int(epochs)
    if eval_every is not None:
        train["eval_every"] = int(eval_every)
    if seed is not None:
        train["seed"] = int(seed)
    tc = TrainConfig(model=config["model"], dataset=str(folder), split="given",
                     device=device or "auto", progress=progress, **train)
    trainer = Trainer(tc, dataset=dataset, log=log)
    log(f"{dataset.name}: {dataset.n_users} users, {dataset.n_items} items, {trainer.n_train} "
        f"training pairs, {len(dataset.test[0])} test pairs; {tc.model} on {trainer.device}, "
        f"{tc.epochs} epochs, evaluation every {tc.eval_every}")
    summary = trainer.fit()
    summary["device_type"] = trainer.device.type
    summary["train_seconds"] = sum(trainer.epoch_seconds)
    summary["eval_seconds"] = sum(h.get("eval_seconds", 0.0) for h in trainer.history)
    spe = summary.get("sec_per_epoch")
    summary["epochs_per_second"] = 1.0 / spe if spe else None
    return summary


def _probe_trainer(config: dict, dataset, folder: Path, n_batches: int, device, seed, log) -> dict:
    """Time ``n_batches`` optimiser steps of epoch 1 and one full test evaluation, and
    extrapolate the seconds per epoch: for CPUs on which a whole epoch takes too long.

    The steps are those of :meth:`gnn.training.Trainer.train_epoch` (same order, negatives and
    batch loss); the first step is reported apart (warm-up) and the median of the rest is used.
    """
    import statistics

    import torch

    from gnn.training import TrainConfig, Trainer, epoch_seed

    train = dict(config["train"])
    if seed is not None:
        train["seed"] = int(seed)
    tc = TrainConfig(model=config["model"], dataset=str(folder), split="given",
                     device=device or "auto", progress=False, **train)
    trainer = Trainer(tc, dataset=dataset, log=log)
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    batches_per_epoch = -(-trainer.n_train // tc.batch_size)
    n_batches = min(int(n_batches), batches_per_epoch)
    log(f"{dataset.name}: {tc.model} on {trainer.device}: timing {n_batches} of the "
        f"{batches_per_epoch} batches of an epoch (batch {tc.batch_size})")
    seed1 = epoch_seed(tc.seed, 1)
    torch.manual_seed(seed1)
    trainer.order_generator.manual_seed(seed1 + 1)
    trainer.sampler.reseed(seed1 + 2)
    trainer.model.train()
    order = torch.randperm(trainer.n_train, device=trainer.device, generator=trainer.order_generator)
    users, positives = trainer.users[order], trainer.items[order]
    negatives = trainer.sampler.sample(users)
    seconds, losses = [], []
    for b in range(n_batches):
        sl = slice(b * tc.batch_size, (b + 1) * tc.batch_size)
        sync()
        start = time.perf_counter()
        loss = trainer.train_step(users[sl], positives[sl], negatives[sl])
        sync()
        seconds.append(time.perf_counter() - start)
        losses.append(float(loss.detach()))
    steady = seconds[1:] or seconds
    per_batch = statistics.median(steady)
    start = time.perf_counter()
    metrics = trainer.evaluate("test")
    eval_seconds = time.perf_counter() - start
    sec_per_epoch = per_batch * batches_per_epoch
    epochs = tc.epochs
    return {
        "model": tc.model, "dataset": dataset.name, "protocol": "given-split", "probe": True,
        "epochs": 0, "probe_batches": n_batches, "batches_per_epoch": batches_per_epoch,
        "batch_seconds": seconds, "batch_losses": losses,
        "first_batch_seconds": seconds[0], "median_batch_seconds": per_batch,
        "sec_per_epoch": sec_per_epoch, "epochs_per_second": 1.0 / sec_per_epoch,
        "eval_seconds": eval_seconds,
        "estimated_full_run_seconds": epochs * sec_per_epoch
        + (epochs // tc.eval_every + (epochs % tc.eval_every != 0)) * eval_seconds,
        "recall@20": None, "ndcg@20": None,  # after a fraction of an epoch: not a result
        "untrained_test_recall@20": metrics["recall@20"],
        "device": trainer.summary()["device"], "device_type": trainer.device.type,
        "n_users": dataset.n_users, "n_items": dataset.n_items, "n_train": trainer.n_train,
        "n_test": int(trainer.test_csr[1].size), "config": tc.to_dict(),
    }


def _run_itemknn(config: dict, dataset, log) -> dict:

    from gnn.csr import csr_from_pairs
    from gnn.itemknn import ItemKNN

    opts = dict(config.get("itemknn", {}))
    chunk = opts.pop("eval_chunk", 1024)
    knn = ItemKNN(**opts)
    train_csr = csr_from_pairs(*dataset.train, dataset.n_users)
    test_csr = csr_from_pairs(*dataset.test, dataset.n_users)
    log(f"{dataset.name}: {dataset.n_users} users, {dataset.n_items} items, "
        f"{train_csr[1].size} training pairs, {test_csr[1].size} test pairs; {knn!r} on cpu")
    knn.fit(*train_csr, dataset.n_items)
    log(f"similarity: {knn.similarity.nnz} entries ({knn.similarity.nnz / dataset.n_items:.1f} "
        f"per item) in {knn.fit_seconds:.1f} s")
    start = time.perf_counter()
    metrics = knn.evaluate(*test_csr, exclude=[train_csr], chunk_size=chunk)
    eval_seconds = time.perf_counter() - start
    summary = {"model": "itemknn", "dataset": dataset.name, "protocol": "given-split",
               "epochs": None, "best_epoch": None, "stopped_early": False}
    summary.update({k: float(v) for k, v in metrics.items() if k != "n_users_evaluated"})
    summary.update({
        "n_users_evaluated": metrics["n_users_evaluated"],
        "sec_per_epoch": None, "epochs_per_second": None,
        "fit_seconds": knn.fit_seconds, "eval_seconds": eval_seconds,
        "similarity_nnz": int(knn.similarity.nnz),
        "itemknn": {"k": knn.k, "shrink": knn.shrink, "block_size": knn.block_size,
                    "eval_chunk": chunk},
        "device": "cpu", "device_type": "cpu",
        "n_users": dataset.n_users, "n_items": dataset.n_items,
        "n_train": int(train_csr[1].size), "n_valid": 0, "n_test": int(test_csr[1].size),
    })
    return summary


def run(config_path, *, epochs: Optional[int] = None, device: Optional[str] = None,
        data_root: Optional[str] = None, out="results/reproduce", eval_every: Optional[int] = None,
        seed: Optional[int] = None, progress: bool = False, probe_batches: Optional[int] = None,
        log=print) -> dict:
    """Run one config end to end; returns the summary (also written under ``out``).

    With ``probe_batches`` it only times that many training steps and one evaluation
    (``<name>-<device>-probe.json``), see :func:`_probe_trainer`.
    """
    start = time.perf_counter()
    config = load_config(config_path)
    if epochs is not None and (isinstance(epochs, bool) or int(epochs) < 0):
        raise ConfigError(f"epochs must be >= 0, but got {epochs!r}")
    if config["model"] == "itemknn" and (epochs is not None or eval_every is not None
                                         or probe_batches is not None):
        raise ConfigError("--epochs / --eval-every / --probe-batches do not apply to itemknn "
                          "(it is not trained in epochs)")
    if probe_batches is not None and (epochs is not None or int(probe_batches) < 1):
        raise ConfigError("--probe-batches needs a positive count and no --epochs")
    from gnn.data import load_dataset

    folder = resolve_dataset(config["dataset"], data_root)
    dataset = load_dataset(str(folder), split="given")
    if dataset.valid is not None:  # the loader's contract; checked because the protocol needs it
        raise RuntimeError(f"{folder}: the given split came with a validation part")
    if config["model"] == "itemknn":
        if device not in (None, "auto", "cpu"):
            log(f"itemknn runs on the CPU (scipy.sparse); --device {device} ignored")
        summary = _run_itemknn(config, dataset, log)
    elif probe_batches is not None:
        summary = _probe_trainer(config, dataset, folder, probe_batches, device, seed, log)
    else:
        summary = _run_trainer(config, dataset, folder, epochs, device, eval_every, seed,
                               progress, log)
    summary["wall_seconds"] = time.perf_counter() - start
    summary["config_name"] = config["name"]
    summary["config_path"] = str(config_path)
    summary["config_file"] = config
    summary["paper"] = config["paper"]
    summary["data_folder"] = str(folder)
    summary["environment"] = _environment(summary["device"])
    paper_epochs = config.get("train", {}).get("epochs")
    if summary.get("probe"):
        summary["partial"] = (f"timing probe: {summary['probe_batches']} of the "
                              f"{summary['batches_per_epoch']} batches of one epoch, seconds per "
                              f"epoch extrapolated (full run estimated at "
                              f"{summary['estimated_full_run_seconds']:.0f} s); no metrics")
    elif epochs is not None and paper_epochs is not None and int(epochs) != paper_epochs:
        summary["partial"] = (f"{epochs} of the config's {paper_epochs} epochs: a timing probe, "
                              f"not comparable with the paper's figures")
        evals = [h["eval_seconds"] for h in summary.get("history", []) if "eval_seconds" in h]
        if summary.get("sec_per_epoch") and evals:
            every = config["train"].get("eval_every", 1)
            n_evals = paper_epochs // every + (paper_epochs % every != 0)
            summary["estimated_full_run_seconds"] = (summary["sec_per_epoch"] * paper_epochs
                                                     + n_evals * sum(evals) / len(evals))
    summary["comparison"] = compare(config, summary)

    out = Path(out)
    stem = output_stem(config, summary["device_type"], epochs)
    if summary.get("probe"):
        stem += "-probe"
    summary_path = out / f"{stem}.json"
    files = {"summary": str(summary_path)}
    if config["model"] != "itemknn" and not summary.get("probe"):
        curve = learning_curve(summary)
        curve_path = out / f"{stem}-curve.json"
        _write_json(curve, curve_path)
        files["curve"] = str(curve_path)
        png = out / f"{stem}-curve.png"
        if plot_curve(curve, png):
            files["curve_png"] = str(png)
    summary["files"] = files
    _write_json(summary, summary_path)
    log(format_comparison(config, summary))
    log("wrote " + ", ".join(files.values()))
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gnn.reproduce", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="a reproduction config, e.g. configs/gowalla/lightgcn.json")
    p.add_argument("--epochs", type=int, default=None,
                   help="override the config's epochs (a short probe: output named -<N>ep)")
    p.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    p.add_argument("--data-root", default=None,
                   help="folder with train.txt/test.txt, or holding <dataset>/ "
                        "(default: $GNN_DATA, ~/.cache/gnn, then ../shared/data)")
    p.add_argument("--out", default="results/reproduce", help="output folder (default %(default)s)")
    p.add_argument("--eval-every", type=int, default=None, help="override the config's eval_every")
    p.add_argument("--seed", type=int, default=None, help="override the config's seed")
    p.add_argument("--progress", action="store_true", help="show a progress bar per epoch")
    p.add_argument("--probe-batches", type=int, default=None, metavar="N",
                   help="only time N training steps and one evaluation, extrapolate s/epoch "
                        "(output <name>-<device>-probe.json)")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        run(args.config, epochs=args.epochs, device=args.device, data_root=args.data_root,
            out=args.out, eval_every=args.eval_every, seed=args.seed, progress=args.progress,
            probe_batches=args.probe_batches)
    except (ConfigError, FileNotFoundError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
