"""ItemKNN on a dataset's validation protocol: k chosen on validation recall@20, test reported once.

    python scripts/itemknn_validation.py --dataset ml-latest-small --k 25 50 100 200 --json out.json

The split is the training CLI's default (seed 0), so the numbers sit beside `gnn.train`'s.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from gnn import load_dataset
from gnn.models import ItemKNN


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="ml-latest-small")
    p.add_argument("--k", type=int, nargs="+", default=[25, 50, 100, 200])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    ds = load_dataset(args.dataset, split="random", seed=args.seed)
    valid = {}
    for k in args.k:
        knn = ItemKNN(k=k).fit(ds.train_csr)
        valid[k] = knn.evaluate(ds.valid_csr, [ds.train_csr])["recall@20"]
        print(f"k={k}: validation recall@20 {valid[k]:.4f}")
    best = max(valid, key=valid.get)
    test = ItemKNN(k=best).fit(ds.train_csr).evaluate(ds.test_csr, [ds.train_csr, ds.valid_csr])
    print(f"k={best} (best on validation): test recall@20 {test['recall@20']:.4f}, "
          f"NDCG@20 {test['ndcg@20']:.4f}, precision@20 {test['precision@20']:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"dataset": ds.name, "seed": args.seed,
                                               "validation_recall@20": valid, "k": best,
                                               "test": test}, indent=2) + "\n")


if __name__ == "__main__":
    main()
