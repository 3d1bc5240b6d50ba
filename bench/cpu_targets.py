"""Measure the CPU targets of the foundation issue on ml-latest-small and print a table.

    python scripts/cpu_targets.py [--data-root ../shared/data] [--epochs 6] [--out results/cpu/targets.md]

Per model: a short run of the training CLI's own Trainer (default split, d = 64, 3 layers,
batch 2048), the median seconds of a training epoch (sampling included, evaluation excluded);
then the median time of one full-ranking evaluation of all users (the trained NGCF's
embeddings, 610 users x 9,724 items, d = 256) over 20 repeats. Run it on an otherwise idle
machine: the numbers are wall-clock times.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from gnn.evaluate import evaluate_ranking
from gnn.training import TrainConfig, Trainer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--out", default="results/cpu/targets.md")
    args = p.parse_args()
    rows = []
    trainer = None
    for model in ("ngcf", "lightgcn", "mf"):
        cfg = TrainConfig(model=model, dataset="ml-latest-small", data_root=args.data_root,
                          epochs=args.epochs, eval_every=args.epochs, progress=False, device="cpu")
        trainer = Trainer(cfg, log=lambda *a: None)
        trainer.fit()
        sec = trainer.epoch_seconds[1:] or trainer.epoch_seconds  # the first epoch warms up
        rows.append((model, statistics.median(sec), min(sec), len(sec)))
        if model == "ngcf":
            ngcf = trainer
    user_emb, item_emb = ngcf.model.embeddings()
    times = []
    for _ in range(21):
        start = time.perf_counter()
        evaluate_ranking(user_emb, item_emb, *ngcf.test_csr, exclude=[ngcf.train_csr, ngcf.valid_csr],
                         ks=(20,))
        times.append(time.perf_counter() - start)
    eval_median = statistics.median(times[1:])

    machine = (f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}, "
               f"{torch.get_num_threads()} threads, float32")
    lines = [f"Measured with `python scripts/cpu_targets.py --epochs {args.epochs}` on: {machine}.",
             "ml-latest-small, default random split 0.8/0.1/0.1, d = 64, 3 layers, batch 2048.", "",
             "| what | median | best | runs |", "|---|---|---|---|"]
    for model, med, best, n in rows:
        lines.append(f"| {model} training epoch (sampling included) | {med:.2f} s | {best:.2f} s | {n} epochs |")
    lines.append(f"| full-ranking evaluation, all 610 users x 9,724 items, NGCF d = 256 | "
                 f"{eval_median * 1000:.0f} ms | {min(times[1:]) * 1000:.0f} ms | 20 |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
