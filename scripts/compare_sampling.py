"""Pair-uniform vs user-uniform positive sampling on one dataset, several seeds (a one-off study).

    python scripts/compare_sampling.py --models lightgcn mf --seeds 0 1 2 --out results/sampling

Each run is the training CLI's default validation protocol (early stopping on validation
recall@20, test metrics of the best epoch); seed s sets the split, the initial weights and every
draw, and both modes use the same seeds (a paired comparison). Writes one JSON summary per run
and a Markdown table (mean ± std over seeds) to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path

import torch

from gnn import TrainConfig, Trainer
from gnn.training import write_json


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="ml-latest-small")
    p.add_argument("--models", nargs="+", default=["lightgcn", "mf"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=400)
    p.add_argument("--out", default="results/sampling")
    args = p.parse_args()
    out = Path(args.out)
    rows = []
    for model in args.models:
        for mode in ("pair", "user"):
            runs = []
            for seed in args.seeds:
                cfg = TrainConfig(model=model, dataset=args.dataset, sampling=mode, seed=seed,
                                  epochs=args.epochs, device="cpu", progress=False)
                summary = Trainer(cfg, log=lambda *a: None).fit()
                write_json(summary, out / f"{model}-{mode}-seed{seed}.json")
                runs.append(summary)
                print(f"{model} {mode} seed {seed}: recall@20 {summary['recall@20']:.4f} "
                      f"ndcg@20 {summary['ndcg@20']:.4f} (best epoch {summary['best_epoch']})",
                      flush=True)
            rows.append((model, mode, runs))
    lines = [f"Sampling modes on {args.dataset}: seeds {args.seeds}, CLI defaults otherwise "
             f"(validation protocol, test metrics at the best validation epoch). "
             f"`python scripts/compare_sampling.py --models {' '.join(args.models)}` on "
             f"{platform.machine()}, torch {torch.__version__}.", "",
             "| model | sampling | test recall@20 | test NDCG@20 | best epochs |",
             "|---|---|---|---|---|"]
    for model, mode, runs in rows:
        def stat(key):
            values = [r[key] for r in runs]
            return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"
        lines.append(f"| {model} | {mode} | {stat('recall@20')} | {stat('ndcg@20')} | "
                     f"{', '.join(str(r['best_epoch']) for r in runs)} |")
    (out / "sampling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
