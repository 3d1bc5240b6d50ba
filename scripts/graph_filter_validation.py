"""A graph filter on a dataset's validation protocol: hyperparameters chosen on validation
recall@20 only, then the test split scored once with the chosen ones (issue 18).

    python scripts/graph_filter_validation.py --model gfcf --json results/cpu/train/gfcf-ml-latest-small.json
    python scripts/graph_filter_validation.py --model bspm --json results/cpu/train/bspm-ml-latest-small.json

The split is the training CLI's default (random 0.8 / 0.1 / 0.1 per user, seed 0), so the numbers
sit beside ``gnn.train``'s and ItemKNN's (scripts/itemknn_validation.py). The filter is fitted on
the training part; validation excludes the training items, test excludes training and
validation items. Ties in validation recall go to the earlier grid point.
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import torch

from gnn import load_dataset
from gnn.models.graph_filters import FILTERS

#: The grids searched by default: the papers' ranges, k capped below the dataset's size.
GRIDS = {
    "gfcf": {"alpha": [0.0, 0.1, 0.3, 0.5, 1.0], "k": [32, 64, 128, 256, 384]},
    "bspm": {"k": [64, 128, 256, 384], "beta": [0.0, 0.1, 0.2, 0.5],
             "sharpen_time": [0.5, 1.0, 1.5, 2.5], "sharpen_solver": ["euler", "rk4"]},
}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=sorted(GRIDS), required=True)
    p.add_argument("--dataset", default="ml-latest-small")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--svd", default="randomized", choices=["scipy", "randomized"])
    p.add_argument("--power-iters", type=int, default=16,
                   help="of the randomized SVD (default 16: cheap on small data)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ds = load_dataset(args.dataset, split="random", seed=args.seed)
    cls, grid = FILTERS[args.model], GRIDS[args.model]
    limit = min(ds.n_users, ds.n_items)
    names = list(grid)
    svd = {"svd": args.svd} if args.svd == "scipy" else {"svd": "randomized",
                                                          "power_iters": args.power_iters}
    rows = []
    for values in itertools.product(*grid.values()):
        params = dict(zip(names, values))
        if params.get("k", 1) >= limit:
            continue
        start = time.perf_counter()
        model = cls(**params, **svd).fit(ds.train_csr)
        recall = model.evaluate(ds.valid_csr, [ds.train_csr])["recall@20"]
        rows.append({**params, "validation_recall@20": recall,
                     "seconds": time.perf_counter() - start})
        print(f"{params}: validation recall@20 {recall:.4f}", flush=True)
    best = max(rows, key=lambda row: row["validation_recall@20"])  # first of equals
    chosen = {name: best[name] for name in names}
    start = time.perf_counter()
    model = cls(**chosen, **svd).fit(ds.train_csr)
    test = model.evaluate(ds.test_csr, [ds.train_csr, ds.valid_csr])
    seconds = time.perf_counter() - start
    print(f"{chosen} (best on validation): test recall@20 {test['recall@20']:.4f}, "
          f"NDCG@20 {test['ndcg@20']:.4f}, precision@20 {test['precision@20']:.4f} "
          f"(fit + test evaluation {seconds:.1f} s)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "model": args.model, "dataset": ds.name, "seed": args.seed, "split": "random",
            "svd": svd, "threads": args.threads, "grid": grid, "validation": rows,
            "chosen": chosen, "hyperparameters": model.hyperparameters(), "test": test,
            "test_fit_and_eval_seconds": seconds}, indent=2) + "\n")


if __name__ == "__main__":
    main()
