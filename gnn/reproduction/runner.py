"""Run a reproduction config end to end: train (or fit a training-free model), evaluate, compare,
write.

Outputs, under ``--out`` (default ``results/reproduce/``), named after the config and device
(``-<N>ep`` added when ``--epochs`` changes the schedule, ``-probe`` for a timing probe):
``<stem>.json`` (the summary: :class:`gnn.Trainer`'s plus the config, the paper's figures, the
comparison, wall time, CPU time, peak resident memory, environment, git commit), and for trained
models ``<stem>-curve.json`` and ``<stem>-curve.png``.
"""
from __future__ import annotations

import platform
import resource
import statistics
import subprocess
import time
from pathlib import Path
from typing import Optional

import torch

from gnn.models import ItemKNN
from gnn.models.graph_filters import FILTERS
from gnn.reproduction.config import (TRAINING_FREE, ConfigError, load_config, output_stem,
                                     resolve_dataset)
from gnn.reproduction.report import compare, format_comparison, learning_curve, plot_curve
from gnn.training import TrainConfig, Trainer, write_json
from gnn.training.report import device_name

REPO_ROOT = Path(__file__).resolve().parents[2]


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


def _process_resources() -> dict:
    """CPU seconds (user + system) and peak resident memory of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # ru_maxrss is in KiB on Linux, in bytes on macOS
    peak = usage.ru_maxrss / (2**20 if platform.system() == "Darwin" else 2**10)
    return {"cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_mb": peak}


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


def _trainer(config: dict, dataset, folder: Path, device, seed, progress, log, **overrides):
    train = dict(config["train"], **{k: int(v) for k, v in overrides.items() if v is not None})
    if seed is not None:
        train["seed"] = int(seed)
    tc = TrainConfig(model=config["model"], dataset=str(folder), split="given",
                     device=device or "auto", progress=progress, **train)
    return tc, Trainer(tc, dataset=dataset, log=log)


def _run_trainer(config: dict, dataset, folder: Path, epochs, device, eval_every, seed,
                 progress, log) -> dict:
    tc, trainer = _trainer(config, dataset, folder, device, seed, progress, log, epochs=epochs,
                           eval_every=eval_every)
    log(f"{dataset.name}: {dataset.n_users} users, {dataset.n_items} items, {trainer.n_train} "
        f"training pairs, {dataset.test_csr.nnz} test pairs; {tc.model} on {trainer.device}, "
        f"{tc.epochs} epochs, evaluation every {tc.eval_every}")
    summary = trainer.fit()
    summary["device_type"] = trainer.device.type
    summary["train_seconds"] = sum(trainer.epoch_seconds)
    summary["eval_seconds"] = sum(h.get("eval_seconds", 0.0) for h in trainer.history)
    spe = summary.get("sec_per_epoch")
    summary["epochs_per_second"] = 1.0 / spe if spe else None
    return summary


def _probe_trainer(config: dict, dataset, folder: Path, n_batches: int, device, seed, log) -> dict:
    """Time ``n_batches`` optimiser steps of epoch 1 (the trainer's own epoch loop, stopped
    early) and one full test evaluation, and extrapolate the seconds per epoch: for CPUs on
    which a whole epoch takes too long. The first step is reported apart (warm-up)."""
    tc, trainer = _trainer(config, dataset, folder, device, seed, False, log)
    batches_per_epoch = -(-len(trainer.positives) // tc.batch_size)
    n_batches = min(int(n_batches), batches_per_epoch)
    log(f"{dataset.name}: {tc.model} on {trainer.device}: timing {n_batches} of the "
        f"{batches_per_epoch} batches of an epoch (batch {tc.batch_size})")
    seconds: list = []
    trainer.train_epoch(max_batches=n_batches, step_seconds=seconds)
    per_batch = statistics.median(seconds[1:] or seconds)
    start = time.perf_counter()
    metrics = trainer.evaluate("test")
    eval_seconds = time.perf_counter() - start
    sec_per_epoch = per_batch * batches_per_epoch
    epochs = tc.epochs
    return {
        "model": tc.model, "dataset": dataset.name, "protocol": "given-split", "probe": True,
        "epochs": 0, "probe_batches": n_batches, "batches_per_epoch": batches_per_epoch,
        "batch_seconds": seconds, "first_batch_seconds": seconds[0],
        "median_batch_seconds": per_batch,
        "sec_per_epoch": sec_per_epoch, "epochs_per_second": 1.0 / sec_per_epoch,
        "eval_seconds": eval_seconds,
        "estimated_full_run_seconds": epochs * sec_per_epoch
        + (epochs // tc.eval_every + (epochs % tc.eval_every != 0)) * eval_seconds,
        "recall@20": None, "ndcg@20": None,  # after a fraction of an epoch: not a result
        "untrained_test_recall@20": metrics["recall@20"],
        "device": device_name(trainer.device), "device_type": trainer.device.type,
        "n_users": dataset.n_users, "n_items": dataset.n_items, "n_train": trainer.n_train,
        "n_test": dataset.test_csr.nnz, "config": tc.to_dict(),
    }


def _closed_form_summary(model: str, dataset, metrics: dict) -> dict:
    """The summary fields every training-free run shares (no epochs, CPU, the data's sizes)."""
    summary = {"model": model, "dataset": dataset.name, "protocol": "given-split",
               "epochs": None, "best_epoch": None, "stopped_early": False}
    summary.update({k: float(v) for k, v in metrics.items() if k != "n_users_evaluated"})
    summary.update({
        "n_users_evaluated": metrics["n_users_evaluated"],
        "sec_per_epoch": None, "epochs_per_second": None, "device": "cpu", "device_type": "cpu",
        "n_users": dataset.n_users, "n_items": dataset.n_items,
        "n_train": dataset.train_csr.nnz, "n_valid": 0, "n_test": dataset.test_csr.nnz,
    })
    return summary


def _run_filter(config: dict, dataset, log) -> dict:
    """Fit a graph filter (gnn.models.graph_filters) on train.txt and evaluate it on test.txt."""
    name = config["model"]
    model = FILTERS[name](**config.get(name, {}))
    train_csr, test_csr = dataset.train_csr, dataset.test_csr
    log(f"{dataset.name}: {dataset.n_users} users, {dataset.n_items} items, {train_csr.nnz} "
        f"training pairs, {test_csr.nnz} test pairs; {model!r} on cpu, "
        f"{torch.get_num_threads()} threads")
    model.fit(train_csr)
    svd = "" if model.svd_seconds is None else f" (SVD {model.svd_seconds:.1f} s)"
    log(f"fit in {model.fit_seconds:.1f} s{svd}; scoring {model.block_size} users per block")
    start = time.perf_counter()
    metrics = model.evaluate(test_csr, exclude=[train_csr])
    summary = _closed_form_summary(name, dataset, metrics)
    summary.update({
        "training_free": True, "fit_seconds": model.fit_seconds,
        "svd_seconds": model.svd_seconds, "eval_seconds": time.perf_counter() - start,
        "block_users": model.block_size, name: model.hyperparameters(),
        "top_singular_values": None if model.singular_values is None
        else [float(x) for x in model.singular_values[:8]],
    })
    return summary


def _run_itemknn(config: dict, dataset, log) -> dict:
    opts = dict(config.get("itemknn", {}))
    chunk = opts.pop("eval_chunk", 1024)
    knn = ItemKNN(**opts)
    train_csr, test_csr = dataset.train_csr, dataset.test_csr
    log(f"{dataset.name}: {dataset.n_users} users, {dataset.n_items} items, "
        f"{train_csr.nnz} training pairs, {test_csr.nnz} test pairs; {knn!r} on cpu")
    knn.fit(train_csr)
    log(f"similarity: {knn.similarity.nnz} entries ({knn.similarity.nnz / dataset.n_items:.1f} "
        f"per item) in {knn.fit_seconds:.1f} s")
    start = time.perf_counter()
    metrics = knn.evaluate(test_csr, exclude=[train_csr], chunk_size=chunk)
    eval_seconds = time.perf_counter() - start
    summary = _closed_form_summary("itemknn", dataset, metrics)
    summary.update({
        "training_free": True, "fit_seconds": knn.fit_seconds, "eval_seconds": eval_seconds,
        "similarity_nnz": int(knn.similarity.nnz),
        "itemknn": {"k": knn.k, "shrink": knn.shrink, "block_size": knn.block_size,
                    "eval_chunk": chunk},
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
    model = config["model"]
    if model in TRAINING_FREE and (epochs is not None or eval_every is not None
                                   or probe_batches is not None):
        raise ConfigError(f"--epochs / --eval-every / --probe-batches do not apply to {model} "
                          f"(it is not trained in epochs)")
    if probe_batches is not None and (epochs is not None or int(probe_batches) < 1):
        raise ConfigError("--probe-batches needs a positive count and no --epochs")
    from gnn.data import load_dataset

    folder = resolve_dataset(config["dataset"], data_root)
    dataset = load_dataset(str(folder), split="given")
    if dataset.valid is not None:  # the loader's contract; checked because the protocol needs it
        raise RuntimeError(f"{folder}: the given split came with a validation part")
    if model in TRAINING_FREE:
        if device not in (None, "auto", "cpu"):
            log(f"{model} runs on the CPU; --device {device} ignored")
        summary = (_run_filter if model in FILTERS else _run_itemknn)(config, dataset, log)
    elif probe_batches is not None:
        summary = _probe_trainer(config, dataset, folder, probe_batches, device, seed, log)
    else:
        summary = _run_trainer(config, dataset, folder, epochs, device, eval_every, seed,
                               progress, log)
    summary["wall_seconds"] = time.perf_counter() - start
    summary.update(_process_resources())
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
    if model not in TRAINING_FREE and not summary.get("probe"):
        curve = learning_curve(summary)
        curve_path = out / f"{stem}-curve.json"
        write_json(curve, curve_path)
        files["curve"] = str(curve_path)
        png = out / f"{stem}-curve.png"
        if plot_curve(curve, png):
            files["curve_png"] = str(png)
    summary["files"] = files
    write_json(summary, summary_path)
    log(format_comparison(config, summary))
    log("wrote " + ", ".join(files.values()))
    return summary
