"""One training step on 1 vs 2 processes (gloo on the CPU, one thread each): gnn.distributed.

Each rank builds ``gnn.distributed.DistributedTrainer`` (NGCF with message dropout 0.1 and
LightGCN, d = 64, 3 layers, batch 2048, the trainer's defaults otherwise) on the real dataset,
takes one untimed step, then ``STEPS`` timed steps on a fixed batch (bench.graphs.fixed_batch).
Recorded per world size (``extra_info``; group ``distributed_step | <dataset>``):

  step_s            median seconds per step (the slowest rank's median)
  bytes_sent_step   bytes one step sends to other ranks (halo and batch exchanges, both
                    directions; the all-reduce of NGCF's weights, d² sized, is not counted)
  peak_rss_bytes    per rank, peak RSS above the RSS before the timed steps (bench.measure)
  rss_bytes         per rank, the process's peak RSS (dataset, graph, model: everything)

pytest-benchmark's own timing of this test is the whole spawned run (start-up included): read
``step_s``. The 1-process row is the same code with no communication, so the difference is the
exchanges' cost on this machine; the ordinary ``gnn.Trainer`` step is test_train_step.py's.
"""
from __future__ import annotations

import resource
import statistics
import time

import pytest
import torch

STEPS = 5
WORLD_SIZES = [1, 2]
MODELS = ["NGCF", "LightGCN"]


def _rank_step(rank: int, label: str, model: str, steps: int) -> dict:
    """What one rank measures (runs in a spawned process)."""
    from bench.graphs import dataset, fixed_batch
    from bench.measure import PeakRSS
    from gnn import TrainConfig
    from gnn.distributed import DistributedTrainer
    from gnn.distributed.exchange import TRAFFIC

    ds = dataset(label)
    config = TrainConfig(model=model.lower(), dataset=label, dim=64, layers=3, batch_size=2048,
                         message_dropout=0.1 if model == "NGCF" else 0.0, device="cpu",
                         progress=False)
    trainer = DistributedTrainer(config, dataset=ds, log=lambda *a: None)
    trainer.model.train()
    u, i, j = fixed_batch(ds, "cpu")
    trainer.train_step(u, i, j)  # warm-up
    meter = PeakRSS()
    meter.reset()
    TRAFFIC.reset()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.train_step(u, i, j)
        times.append(time.perf_counter() - start)
    return {"step_s": statistics.median(times), "bytes_sent_step": TRAFFIC.bytes_sent // steps,
            "peak_rss_bytes": meter.peak_above_start(),
            "rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "halo_rows": int(trainer.model.graph.halo.numel()), "nnz": trainer.model.graph.nnz}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("world", WORLD_SIZES)
def test_distributed_step(benchmark, world, model, dataset, device):
    from bench.graphs import host_graph
    from bench.measure import base_info
    from gnn.data import DatasetNotFoundError
    from gnn.distributed.local import run_ranks, unwrap

    if device.type != "cpu":
        pytest.skip("the process benchmark runs gloo on the CPU (one thread per rank)")
    try:
        adj = host_graph(dataset)
    except DatasetNotFoundError as exc:
        pytest.skip(f"{dataset}: {exc} (set $GNN_DATA)")
    steps = 1 if benchmark.disabled else STEPS
    ranks = []

    def run():
        ranks[:] = unwrap(run_ranks(_rank_step, world, dataset, model, steps, timeout=600,
                                    deadline=3600))

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.group = f"distributed_step | {dataset}"
    info = base_info("distributed_step", f"{model} x{world} procs", dataset, adj, 64,
                     torch.float32, device)
    info.update(world_size=world, threads_per_rank=1, steps=steps,
                step_s=max(r["step_s"] for r in ranks),
                bytes_sent_step=sum(r["bytes_sent_step"] for r in ranks),
                peak_rss_bytes=[r["peak_rss_bytes"] for r in ranks],
                rss_bytes=[r["rss_bytes"] for r in ranks],
                halo_rows=[r["halo_rows"] for r in ranks], nnz_per_rank=[r["nnz"] for r in ranks])
    benchmark.extra_info.update(info)
    assert all(r["step_s"] > 0 for r in ranks)
    if world == 1:
        assert info["bytes_sent_step"] == 0
