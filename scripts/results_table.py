"""Markdown table of training summaries written by ``python -m gnn.train --json``.

    python scripts/results_table.py results/cpu/train/*.json
"""
import json
import sys


def main(paths):
    print("| model | test recall@20 | test NDCG@20 | test precision@20 | best epoch | epochs run | s/epoch (this run) | command |")
    print("|---|---|---|---|---|---|---|---|")
    for path in paths:
        s = json.load(open(path))
        cfg = s["config"]
        root = f" --data-root {cfg['data_root']}" if cfg.get("data_root") else ""
        command = (f"`python -m gnn.train --model {s['model']} --dataset {cfg['dataset']}{root} "
                   f"--json {path}`")
        print(f"| {s['model']} | {s['recall@20']:.4f} | {s['ndcg@20']:.4f} | {s['precision@20']:.4f} | "
              f"{s['best_epoch']} | {s['epochs']} | {s['sec_per_epoch']:.2f} | {command} |")


if __name__ == "__main__":
    main(sys.argv[1:])
