"""The CPU training targets on ml-latest-small: seconds per epoch and per full evaluation.

    python -m bench.cpu_targets [--epochs 6] [--out results/cpu/targets.md]

Per model, a short run of ``gnn.Trainer`` (default split, d = 64, 3 layers, batch 2048): the
median seconds of a training epoch (sampling included, evaluation excluded; the first epoch
warms up). Then the median of 20 full-ranking evaluations of all users with the trained NGCF's
embeddings (d = 256), by an Evaluator built once, as the trainer does. Wall-clock times: run it
on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from bench import graphs
from gnn import TrainConfig, Trainer
from gnn.evaluation import Evaluator

DATASET = "ml-latest-small"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--out", default="results/cpu/targets.md")
    args = p.parse_args(argv)
    ds = graphs.dataset(DATASET)
    lines = [f"Measured with `python -m bench.cpu_targets --epochs {args.epochs}` on: "
             f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads, float32.",
             "ml-latest-small, default random split 0.8/0.1/0.1, d = 64, 3 layers, batch 2048.", "",
             "| what | median | best | runs |", "|---|---|---|---|"]
    for model in ("ngcf", "lightgcn", "mf"):
        cfg = TrainConfig(model=model, dataset=DATASET, epochs=args.epochs, device="cpu",
                          eval_every=args.epochs, progress=False,
                          keep_freed_memory=True)  # as the earlier results were taken
        trainer = Trainer(cfg, ds, log=lambda *a: None)
        trainer.fit()
        sec = trainer.epoch_seconds[1:] or trainer.epoch_seconds  # the first epoch warms up
        lines.append(f"| {model} training epoch (sampling included) | "
                     f"{statistics.median(sec):.2f} s | {min(sec):.2f} s | {len(sec)} epochs |")
        if model == "ngcf":
            user_emb, item_emb = trainer.model.embeddings()
    seen = [c for c in (ds.train_csr, ds.valid_csr) if c is not None]
    evaluator = Evaluator(ds.test_csr, seen, ks=(20,))
    times = []
    for _ in range(21):
        start = time.perf_counter()
        evaluator.evaluate(user_emb, item_emb)
        times.append(time.perf_counter() - start)
    lines.append(f"| full-ranking evaluation, all {ds.n_users} users x {ds.n_items:,} items, NGCF "
                 f"d = {user_emb.shape[1]} | {statistics.median(times[1:]) * 1000:.0f} ms | "
                 f"{min(times[1:]) * 1000:.0f} ms | 20 |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
