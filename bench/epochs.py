"""Training speed of whole epochs: our NGCF and LightGCN, and PyG's LightGCN on the same graph.

    python3 -m bench.epochs --out epochs.json                     # CUDA: ml-latest-small, Gowalla
    python3 -m bench.epochs --device cpu --datasets ml-latest-small --epochs 1 --out e.json

Ours: ``gnn.Trainer(config, dataset).train_epoch()`` with the trainer's defaults (d = 64,
3 layers, batch 2048, Adam 1e-3, L2 1e-4, pair sampling; NGCF with message dropout 0.1), the
dataset from bench/graphs.py. PyG: bench/pyg_lightgcn.py (only when torch_geometric imports).
A few warm-up steps first (Triton compilation), then ``--epochs`` timed epochs (sampling
included, evaluation excluded); the peak device memory of the timed epochs; and, for ours, the
seconds of one full-ranking test evaluation (the device run sizes its learning-curve run from
these). The json (``{"meta", "records"}``) is rewritten after every run.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from bench import graphs, pyg_lightgcn
from bench.measure import sync
from bench.settings import device_name
from gnn import TrainConfig, Trainer

WARMUP_STEPS = 3


def _peak_reset(device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak(device):
    return int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None


def ours(label: str, model: str, device, epochs: int) -> dict:
    ds = graphs.dataset(label)
    config = TrainConfig(model=model, dataset=label, device=str(device), epochs=epochs,
                         progress=False)
    trainer = Trainer(config, ds, log=lambda *a: None)
    u, i, j = graphs.fixed_batch(ds, device, config.batch_size)
    for _ in range(WARMUP_STEPS):
        trainer.train_step(u, i, j)
    sync(device)
    _peak_reset(device)
    seconds, losses = [], []
    for _ in range(epochs):
        start = time.perf_counter()
        losses.append(trainer.train_epoch())
        sync(device)
        seconds.append(time.perf_counter() - start)
    peak = _peak(device)
    start = time.perf_counter()
    trainer.evaluate("test")
    sync(device)
    return {"provider": f"ours {model}", "model": model, "n_train": trainer.n_train,
            "batch_size": config.batch_size, "dim": config.dim, "layers": config.layers,
            "epoch_seconds": seconds, "loss": losses[-1], "peak_mem_bytes": peak,
            "eval_seconds": time.perf_counter() - start}


def pyg(label: str, variant: str, device, epochs: int) -> dict:
    ds = graphs.dataset(label)
    config = TrainConfig(model="lightgcn", dataset=label)  # the same defaults as ours
    run = pyg_lightgcn.PygLightGCNRun(ds, graphs.host_graph(label), device, variant=variant,
                                      dim=config.dim, layers=config.layers,
                                      batch_size=config.batch_size, lr=config.lr, reg=config.reg)
    run.warm_up(WARMUP_STEPS)
    sync(device)
    _peak_reset(device)
    seconds = [run.epoch() for _ in range(epochs)]
    import torch_geometric

    return {"provider": f"PyG lightgcn ({variant})", "model": "lightgcn", "n_train": run.n_train,
            "batch_size": config.batch_size, "dim": config.dim, "layers": config.layers,
            "epoch_seconds": seconds, "peak_mem_bytes": _peak(device),
            "torch_geometric": torch_geometric.__version__}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--datasets", default="gowalla,ml-latest-small")
    p.add_argument("--models", default="lightgcn,ngcf")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs per run")
    p.add_argument("--pyg", choices=("auto", "on", "off"), default="auto",
                   help="PyG's LightGCN too (auto: when torch_geometric imports)")
    p.add_argument("--pyg-datasets", default="gowalla", help="datasets of the PyG runs")
    p.add_argument("--out", type=Path, required=True, help="json file to write")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    use_pyg = args.pyg == "on" or (args.pyg == "auto" and pyg_lightgcn.available())
    meta = {"device": device_name(device), "torch": torch.__version__, "pyg": use_pyg,
            "warmup_steps": WARMUP_STEPS}
    if args.pyg == "auto" and not use_pyg:
        print("torch_geometric is not installed: the PyG runs are skipped", flush=True)
    jobs = []
    for label in filter(None, args.datasets.split(",")):
        jobs += [(label, "ours", m) for m in args.models.split(",")]
        if use_pyg and label in args.pyg_datasets.split(","):
            jobs += [(label, "pyg", v) for v in pyg_lightgcn.VARIANTS]
    records, failed = [], 0
    for label, kind, what in jobs:
        base = {"dataset": label, "device": device_name(device)}
        try:
            rec = ours(label, what, device, args.epochs) if kind == "ours" else \
                pyg(label, what, device, args.epochs)
            rec["s_per_epoch"] = statistics.median(rec["epoch_seconds"])
            rec["epochs_per_s"] = 1.0 / rec["s_per_epoch"]
            rec["status"] = "ok"
        except Exception as exc:  # noqa: BLE001 - recorded; the other runs still go
            failed += 1
            rec = {"provider": f"{kind} {what}",
                   "status": f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
        records.append(dict(base, **rec))
        print(json.dumps({k: records[-1].get(k) for k in
                          ("dataset", "provider", "s_per_epoch", "status")}), flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(json.dumps({"meta": meta, "records": records}, indent=1) + "\n")
        tmp.replace(args.out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
