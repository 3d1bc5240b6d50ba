"""One training step, the trainer's own: ``gnn.Trainer(config, dataset).train_step(u, i, j)``.

Full-graph propagation, BPR loss on a batch of 2048 (u, i, j) triples, backward, Adam; d = 64,
3 layers (NGCF with message dropout 0.1), the trainer's default settings otherwise. The batch is
fixed (training pairs drawn with a seeded generator, j uniform over items): sampling is timed
separately (test_pipeline.py). Group ``train_step | <size>`` puts the models side by side:
  NGCF, LightGCN   the graph models
  MF               no propagation (the floor: embedding lookups, loss, Adam)
On CUDA the graph models also run on the kernels' torch backend ("[torch backend]",
``gnn.kernels.defaults.backend = "torch"``), so the Triton kernels' share of a step is visible.
"""
from __future__ import annotations

import pytest
import torch

from bench.graphs import fixed_batch
from bench.measure import base_info, run_benchmark
from bench.settings import embedding_dim
from gnn import TrainConfig, Trainer
from gnn.kernels import defaults as kernel_defaults

BATCH = 2048
PROVIDERS = ["NGCF", "LightGCN", "MF", "NGCF [torch backend]", "LightGCN [torch backend]"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_train_step(benchmark, provider, size, split_dataset, device, monkeypatch):
    model, _, backend = provider.partition(" [")
    if backend:
        if device.type != "cuda":
            pytest.skip("the torch backend is what runs on the CPU anyway (see the plain provider)")
        monkeypatch.setattr(kernel_defaults, "backend", "torch")
    config = TrainConfig(model=model.lower(), dim=embedding_dim(), layers=3,
                         message_dropout=0.1 if model == "NGCF" else 0.0, batch_size=BATCH,
                         device=device.type, progress=False)
    trainer = Trainer(config, split_dataset, log=lambda *a: None)
    trainer.model.train()
    u, i, j = fixed_batch(split_dataset, device)
    adj = trainer.model.adj
    info = base_info("train_step", provider, size, adj, config.dim, torch.float32, device)
    info.update(batch=BATCH, layers=0 if model == "MF" else config.layers,
                repr_bytes=0 if model == "MF" else adj.nbytes,
                repr="no graph" if model == "MF" else "CSR")

    def check(loss):
        assert torch.isfinite(loss), loss

    # Always warmed up: a cold first step pays one-time costs (value checks of the graph,
    # schedules, allocator growth) that a training run pays once, not per step.
    run_benchmark(benchmark, lambda: trainer.train_step(u, i, j), info, device=device,
                  check=check)
