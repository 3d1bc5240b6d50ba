"""A grid of training settings chosen on validation only (the CLI's validation protocol).

    python scripts/validation_grid.py --base '{"model": "mf", "loss": "ccl"}' \\
        --grid '{"negatives": [64, 256], "ccl_margin": [0.6, 0.9]}' --json out.json

Every combination of ``--grid`` over ``--base`` (TrainConfig fields) is trained on the dataset's
default split (seed 0, as ``python -m gnn.train``): early stopping on validation recall@20, the
best validation epoch's weights. The choice is the highest validation recall@20; the test
metrics are recorded for every run but never read by the choice. The output names the chosen
fields; the result row of a table is then ``python -m gnn.train`` with them (its own JSON).
"""
from __future__ import annotations

import argparse
import itertools
import json
import resource
import time
from pathlib import Path

import torch

from gnn import TrainConfig, Trainer, load_dataset


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def validation_run(dataset, name: str, fields: dict) -> dict:
    """Train ``TrainConfig(**fields)`` on ``dataset`` (named ``name``) under the validation
    protocol; the best validation epoch's recall@20, its test metrics, the run's time."""
    config = TrainConfig(dataset=name, device="cpu", progress=False, **fields)
    start, cpu = time.perf_counter(), cpu_seconds()
    trainer = Trainer(config, dataset=dataset, log=lambda *a: None)
    summary = trainer.fit()
    return {"valid_recall@20": trainer.best["valid_recall@20"],
            "best_epoch": summary["best_epoch"], "epochs": summary["epochs"],
            "test_recall@20": summary["recall@20"], "test_ndcg@20": summary["ndcg@20"],
            "sec_per_epoch": summary["sec_per_epoch"],
            "wall_seconds": time.perf_counter() - start, "cpu_seconds": cpu_seconds() - cpu}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="ml-latest-small")
    p.add_argument("--base", default="{}", help="a JSON object of TrainConfig fields")
    p.add_argument("--grid", default="{}", help="a JSON object: field -> list of values")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    base, grid = json.loads(args.base), json.loads(args.grid)
    dataset = load_dataset(args.dataset, split="random", seed=base.get("seed", 0))
    rows = []
    for values in itertools.product(*grid.values()):
        fields = {**base, **dict(zip(grid, values))}
        rows.append({"fields": fields, **validation_run(dataset, args.dataset, fields)})
        print(json.dumps(rows[-1]), flush=True)
    chosen = max(rows, key=lambda r: r["valid_recall@20"])
    print("chosen on validation:", json.dumps(chosen["fields"]))
    if args.json:
        out = {"dataset": args.dataset, "protocol": "validation (split seed 0), early stopping on "
               "validation recall@20; chosen by validation recall@20 only",
               "threads": args.threads, "torch": torch.__version__, "base": base, "grid": grid,
               "rows": rows, "chosen": chosen["fields"]}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
