"""The device run's epoch stage: whole training epochs of ours and of PyG's LightGCN, same graph.

    python3 -m bench.epochs --out epochs.json                 # CUDA: Gowalla, ml-latest-small
    python3 -m bench.epochs --device cpu --datasets ml-latest-small --epochs 1 --out e.json

Ours: ``Trainer.train_epoch()`` with the trainer's defaults; PyG (where ``torch_geometric``
imports; the project's one import of it, never in the package): its ``LightGCN`` trained as in
its own example on the same graph, as an edge list or as our normalised Â (docs/BENCHMARKS.md).
A few warm-up steps, then ``--epochs`` timed epochs (sampling included, evaluation excluded),
their peak memory and, for ours, one test evaluation's seconds (the learning-curve stage fits
its epochs to these). The json is rewritten after every run.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench import graphs
from bench.measure import device_name, sync
from gnn import TrainConfig, Trainer

WARMUP_STEPS = 3
MODELS, PYG_DATASETS = ("lightgcn", "ngcf"), ("gowalla",)
PYG_VARIANTS = ("edge_index", "sparse_adj")


def _timed_epochs(device, warm_up, epoch, epochs: int):
    """``(seconds of each epoch, peak device memory of them)`` after ``warm_up()``."""
    warm_up()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        epoch()
        sync(device)
        seconds.append(time.perf_counter() - start)
    return seconds, int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None


def ours(label: str, model: str, device, epochs: int) -> dict:
    ds = graphs.dataset(label)
    config = TrainConfig(model=model, dataset=label, device=str(device), epochs=epochs,
                         progress=False, keep_freed_memory=True)
    trainer = Trainer(config, ds, log=lambda *a: None)
    u, i, j = graphs.fixed_batch(ds, device, config.batch_size)
    losses = []
    seconds, peak = _timed_epochs(
        device, lambda: [trainer.train_step(u, i, j) for _ in range(WARMUP_STEPS)],
        lambda: losses.append(trainer.train_epoch()), epochs)
    start = time.perf_counter()
    trainer.evaluate("test")
    sync(device)
    return {"provider": f"ours {model}", "model": model, "n_train": trainer.n_train,
            "batch_size": config.batch_size, "dim": config.dim, "layers": config.layers,
            "epoch_seconds": seconds, "loss": losses[-1], "peak_mem_bytes": peak,
            "eval_seconds": time.perf_counter() - start}


def pyg(label: str, variant: str, device, epochs: int, seed: int = 0) -> dict:
    import torch_geometric
    from torch_geometric.nn.models import LightGCN

    ds, config = graphs.dataset(label), TrainConfig(model="lightgcn", dataset=label)  # our defaults
    n_users, n_items = ds.n_users, ds.n_items
    user, item = (torch.from_numpy(np.ascontiguousarray(a)) for a in ds.train_csr.pairs())
    pairs = torch.stack([user, item + n_users]).to(device)  # (2, n_train), items after users
    torch.manual_seed(seed)
    if variant == "edge_index":
        graph = torch.cat([pairs, pairs.flip(0)], dim=1)
        model = LightGCN(n_users + n_items, config.dim, config.layers).to(device)
    else:  # our Â, normalised and symmetric (its own transpose)
        adj = graphs.host_graph(label).to(device)
        graph = torch.sparse_csr_tensor(adj.rowptr, adj.col.long(), adj.val,
                                        (adj.n_nodes, adj.n_nodes), check_invariants=False)
        model = LightGCN(adj.n_nodes, config.dim, config.layers, normalize=False).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    gen = torch.Generator(device=device).manual_seed(seed)

    def step(pos):
        neg = torch.randint(n_users, n_users + n_items, (pos.shape[1],), device=device,
                            generator=gen)
        label_index = torch.cat([pos, torch.stack([pos[0], neg])], dim=1)
        pos_rank, neg_rank = model(graph, label_index).chunk(2)
        loss = model.recommendation_loss(pos_rank, neg_rank, node_id=label_index.unique(),
                                         lambda_reg=config.reg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def epoch():
        order = torch.randperm(pairs.shape[1], device=device, generator=gen)
        for b in range(0, pairs.shape[1], config.batch_size):
            step(pairs[:, order[b:b + config.batch_size]])

    seconds, peak = _timed_epochs(device, lambda: [step(pairs[:, :config.batch_size])
                                                   for _ in range(WARMUP_STEPS)], epoch, epochs)
    return {"provider": f"PyG lightgcn ({variant})", "model": "lightgcn",
            "n_train": int(pairs.shape[1]), "batch_size": config.batch_size, "dim": config.dim,
            "layers": config.layers, "epoch_seconds": seconds, "peak_mem_bytes": peak,
            "torch_geometric": torch_geometric.__version__}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--datasets", default="gowalla,ml-latest-small")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs per run")
    p.add_argument("--out", type=Path, required=True, help="json file to write")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    use_pyg = importlib.util.find_spec("torch_geometric") is not None
    if not use_pyg:
        print("torch_geometric is not installed: the PyG runs are skipped", flush=True)
    meta = {"device": device_name(device), "torch": torch.__version__, "pyg": use_pyg,
            "warmup_steps": WARMUP_STEPS}
    jobs = []
    for label in filter(None, args.datasets.split(",")):
        jobs += [(label, ours, m) for m in MODELS]
        if use_pyg and label in PYG_DATASETS:
            jobs += [(label, pyg, v) for v in PYG_VARIANTS]
    records, failed = [], 0
    for label, run, what in jobs:
        try:
            rec = run(label, what, device, args.epochs)
            rec["s_per_epoch"] = statistics.median(rec["epoch_seconds"])
            rec.update(epochs_per_s=1.0 / rec["s_per_epoch"], status="ok")
        except Exception as exc:  # noqa: BLE001 - recorded; the other runs still go
            failed += 1
            rec = {"provider": f"{'ours' if run is ours else 'pyg'} {what}",
                   "status": f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
        records.append(dict({"dataset": label, "device": device_name(device)}, **rec))
        shown = ("dataset", "provider", "s_per_epoch", "status")
        print(json.dumps({k: records[-1].get(k) for k in shown}), flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(json.dumps({"meta": meta, "records": records}, indent=1) + "\n")
        tmp.replace(args.out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
