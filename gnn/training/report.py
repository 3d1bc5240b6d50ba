"""What a training run reports: the summary dict (the CLI's ``--json``), and its progress bar."""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import torch

from gnn.evaluation import METRICS


def summarize(trainer, stopped_early: bool = False) -> dict:
    """The run's summary: test metrics of the reported epoch, sizes, timing, config, history."""
    cfg, ds = trainer.config, trainer.dataset
    best = trainer.best or {}
    test = trainer.test_metrics or {}
    out = {
        "model": cfg.model,
        "dataset": ds.name,
        "protocol": "validation" if trainer.has_validation else "given-split",
        "epochs": trainer.epoch,
        "best_epoch": best.get("epoch"),
        "stopped_early": stopped_early,
    }
    for k in cfg.ks:
        for metric in METRICS:
            out[f"{metric}@{k}"] = test.get(f"{metric}@{k}")
    if trainer.has_validation:
        out["valid_recall@20"] = best.get("valid_recall@20")
        out["valid_ndcg@20"] = best.get("valid_ndcg@20")
    out.update({
        "sec_per_epoch": statistics.median(trainer.epoch_seconds) if trainer.epoch_seconds else None,
        "device": device_name(trainer.device),
        "n_users": ds.n_users,
        "n_items": ds.n_items,
        "n_train": trainer.n_train,
        "n_valid": ds.valid_csr.nnz if trainer.has_validation else 0,
        "n_test": ds.test_csr.nnz,
        "config": cfg.to_dict(),
        "history": trainer.history,
    })
    return out


def write_json(summary: dict, path) -> None:
    """Write ``summary`` to ``path`` atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    tmp.replace(path)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return "cpu"


def progress_bar_shown(enabled: bool) -> bool:
    """Whether :func:`progress_bar` shows a bar: when enabled, with stdout and stderr both
    terminals (its ``\\r`` redraws would litter a log file; the trainer writes one line per epoch
    instead), and with tqdm installed (it is optional)."""
    if not enabled or not (_is_terminal(sys.stdout) and _is_terminal(sys.stderr)):
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr, or None when :func:`progress_bar_shown` says no."""
    if not progress_bar_shown(enabled):
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True,
                file=sys.stderr)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
