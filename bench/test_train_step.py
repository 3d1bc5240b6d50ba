"""One training step, the trainer's own: ``gnn.Trainer(config, dataset).train_step(u, i, j)``.

Full-graph propagation, BPR on a fixed batch of 2048 triples (sampling is timed in
test_pipeline.py), backward, Adam; d = 64, 3 layers, NGCF with message dropout 0.1, the
trainer's defaults otherwise. MF is the floor (no propagation). On CUDA the graph models also
run on the kernels' torch backend ("[torch backend]"), so the Triton kernels' share is visible.
"""
from __future__ import annotations

import pytest
import torch

from bench.graphs import fixed_batch
from bench.measure import DIM, base_info, run_benchmark
from gnn import TrainConfig, Trainer
from gnn.kernels import defaults as kernel_defaults

BATCH = 2048


@pytest.mark.parametrize("provider", ["NGCF", "LightGCN", "MF", "NGCF [torch backend]",
                                      "LightGCN [torch backend]"])
def test_train_step(benchmark, provider, size, split_dataset, device, monkeypatch):
    model, _, backend = provider.partition(" [")
    if backend:
        if device.type != "cuda":
            pytest.skip("the torch backend is what runs on the CPU anyway (see the plain provider)")
        monkeypatch.setattr(kernel_defaults, "backend", "torch")
    graph = model != "MF"  # MF has no propagation, so no layers
    config = TrainConfig(model=model.lower(), dim=DIM, batch_size=BATCH,
                         message_dropout=0.1 if model == "NGCF" else 0.0, device=device.type,
                         progress=False, keep_freed_memory=True,
                         **({"layers": 3} if graph else {}))
    trainer = Trainer(config, split_dataset, log=lambda *a: None)
    trainer.model.train()
    u, i, j = fixed_batch(split_dataset, device)
    adj = trainer.model.adj
    info = dict(base_info("train_step", provider, size, adj, config.dim, torch.float32, device),
                batch=BATCH, layers=config.layers if graph else 0,
                repr_bytes=adj.nbytes if graph else 0, repr="CSR" if graph else "no graph")
    # Always warmed up: a cold first step pays one-time costs (value checks of the graph,
    # schedules, allocator growth) that a training run pays once, not per step.
    def check(loss):
        assert torch.isfinite(loss), loss

    run_benchmark(benchmark, lambda: trainer.train_step(u, i, j), info, device=device, check=check)
