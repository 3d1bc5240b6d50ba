"""One training step on 1 vs 2 processes (gloo on the CPU, one thread each): gnn.distributed.

Each rank builds ``DistributedTrainer`` (NGCF with message dropout 0.1, LightGCN; d = 64,
3 layers, batch 2048) on the real dataset, takes one untimed step, then STEPS timed steps on a
fixed batch. Recorded per world size in ``extra_info``: ``step_s`` (the slowest rank's median:
read this, pytest-benchmark's own time is the whole spawned run), ``bytes_sent_step`` (halo and
batch exchanges; NGCF's d²-sized weight all-reduce not counted), per rank ``peak_rss_bytes``
(above the RSS before the timed steps) and ``rss_bytes`` (the process's peak).
"""
from __future__ import annotations

import resource
import statistics
import time

import pytest
import torch

STEPS = 5
pytestmark = pytest.mark.real_data


def rank_step(rank: int, label: str, model: str, steps: int) -> dict:
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


@pytest.mark.parametrize("model", ["NGCF", "LightGCN"])
@pytest.mark.parametrize("world", [1, 2])
def test_distributed_step(benchmark, world, model, size, split_dataset, device):
    from bench.graphs import host_graph
    from bench.measure import base_info
    from gnn.distributed.local import run_ranks, unwrap

    if device.type != "cpu":
        pytest.skip("the process benchmark runs gloo on the CPU (one thread per rank)")
    steps, ranks = 1 if benchmark.disabled else STEPS, []

    def run():
        ranks[:] = unwrap(run_ranks(rank_step, world, size, model, steps, timeout=600,
                                    deadline=3600))

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.group = f"distributed_step | {size}"
    info = base_info("distributed_step", f"{model} x{world} procs", size, host_graph(size),
                     64, torch.float32, device)
    info.update(world_size=world, threads_per_rank=1, steps=steps,
                step_s=max(r["step_s"] for r in ranks),
                bytes_sent_step=sum(r["bytes_sent_step"] for r in ranks),
                nnz_per_rank=[r["nnz"] for r in ranks],
                **{k: [r[k] for r in ranks] for k in ("peak_rss_bytes", "rss_bytes", "halo_rows")})
    benchmark.extra_info.update(info)
    assert all(r["step_s"] > 0 for r in ranks)
    assert world > 1 or info["bytes_sent_step"] == 0
