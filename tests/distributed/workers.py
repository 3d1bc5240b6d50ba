"""What each rank runs in the distributed tests (spawned by ranks.run_ranks), and the same
recording on one process for the reference."""
from __future__ import annotations

import torch

from gnn import TrainConfig, Trainer


def weighted_lightgcn():
    """A model the library does not ship (LightGCN with learned layer weights, a parameter of
    its own), registered as "weighted-lightgcn" in this process; returns its class."""
    import torch
    from torch import nn

    import gnn
    from gnn.models import MODELS

    if "weighted-lightgcn" in MODELS:
        return MODELS["weighted-lightgcn"]

    class Weighted(gnn.LightGCN):
        def __init__(self, adj, embedding_dim=64, num_layers=3, node_dropout=0.0):
            super().__init__(adj, embedding_dim, num_layers, node_dropout=node_dropout)
            self.init_args = dict(embedding_dim=embedding_dim, num_layers=num_layers,
                                  node_dropout=node_dropout)
            self.beta = nn.Parameter(torch.linspace(-0.3, 0.3, num_layers + 1))

        def readout(self, layers, rows=None):
            weights = torch.softmax(self.beta, 0)
            return sum(w * (x if rows is None else x.index_select(0, rows))
                       for w, x in zip(weights, layers))

    return gnn.register_model("weighted-lightgcn", Weighted)


def dataset_for(name):
    """The dataset object a test names ("tiny": a seeded synthetic split; otherwise None, so the
    trainer loads config.dataset itself)."""
    from tiny_datasets import tiny_split

    if name == "tiny":
        return tiny_split(seed=3, n_users=30, n_items=40)
    if name == "tiny-other":  # same sizes, other interactions
        return tiny_split(seed=4, n_users=30, n_items=40)
    return None


def tiny_config(**kw) -> dict:
    base = dict(model="ngcf", dataset="tiny", epochs=4, batch_size=16, lr=0.05, dim=8, layers=2,
                device="cpu", progress=False, message_dropout=0.0, node_dropout=0.0, seed=5)
    base.update(kw)
    return base


def recording(trainer) -> list:
    """The list the loss of every later step of ``trainer`` is appended to."""
    losses = []
    step = trainer.train_step

    def recorded(u, i, j):
        loss = step(u, i, j)
        losses.append(float(loss))
        return loss

    trainer.train_step = recorded
    return losses


def record(trainer, steps: int) -> dict:
    """Per-step losses of the first ``steps`` steps (whole epochs), then the metrics."""
    losses = recording(trainer)
    while len(losses) < steps:
        trainer.train_epoch()
    out = {"losses": losses[:steps], "test": trainer.evaluate("test")}
    if "valid" in trainer.evaluators:
        out["valid"] = trainer.evaluate("valid")
    return out


def single_process(config_kw: dict, steps: int, dataset: str) -> dict:
    trainer = Trainer(TrainConfig(**config_kw), dataset=dataset_for(dataset), log=lambda *a: None)
    return record(trainer, steps)


def distributed(rank: int, configs: list, steps: int, dataset: str) -> list:
    """:func:`record` for each config in turn, and what each rank holds."""
    from gnn.distributed import DistributedTrainer

    if any(c["model"] == "weighted-lightgcn" for c in configs):
        weighted_lightgcn()
    out = []
    for config_kw in configs:
        trainer = DistributedTrainer(TrainConfig(**config_kw), dataset=dataset_for(dataset),
                                     log=lambda *a: None)
        result = record(trainer, steps)
        g = trainer.model.graph
        result.update(bounds=trainer.partition.bounds, nnz=g.nnz, halo=g.halo.tolist(),
                      received=_received_ids(trainer))
        out.append(result)
    return out


def _received_ids(trainer) -> list:
    """The node ids the halo exchange delivers to this rank (each rank sends its own ids)."""
    from gnn.distributed.exchange import exchange

    model = trainer.model
    ids = torch.arange(model.graph.lo, model.graph.hi, dtype=torch.float64)[:, None]
    got = exchange(ids.index_select(0, model.halo.send_index), model.halo)
    return got[:, 0].long().tolist()


def fit_recorded(trainer) -> dict:
    """``trainer.fit()`` with the loss of every step recorded."""
    losses = recording(trainer)
    return {"losses": losses, "summary": trainer.fit()}


def checkpoints(rank: int, config_kw: dict, folder: str, phase: str) -> dict:
    """phase "first": an uninterrupted 2-epoch run (checkpoint and model file written), then a
    1-epoch run whose checkpoint is copied (for the other world sizes) and resumed to 2 epochs.
    phase "resume": resume the copy for this world size to 2 epochs."""
    import dataclasses
    import shutil
    from pathlib import Path

    import torch.distributed as dist

    from gnn.distributed import DistributedTrainer

    import warnings

    folder, world = Path(folder), int(__import__("os").environ["WORLD_SIZE"])
    base = TrainConfig(**config_kw)

    def trainer(**kw):
        return DistributedTrainer(dataclasses.replace(base, **kw), dataset=dataset_for("tiny"),
                                  log=lambda *a: None)

    out = {}
    with warnings.catch_warnings(record=True) as caught:  # what a user would see printed
        warnings.simplefilter("always")
        if phase == "first":
            full = trainer(epochs=2, checkpoint=str(folder / "full"))
            out["full"] = fit_recorded(full)
            full.save_model(folder / "model.pt")
            trainer(epochs=1, checkpoint=str(folder / "epoch1")).fit()
            if rank == 0:
                for copy in ("resume1", "resume2", "resume3"):
                    shutil.copytree(folder / "epoch1", folder / copy)
            dist.barrier()
        out["resumed"] = fit_recorded(trainer(epochs=2, resume=True,
                                              checkpoint=str(folder / f"resume{world}")))
    out["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
    return out


def refused_on_one_rank(rank: int, config_kw: dict) -> str:
    """Rank 1 gets a dataset without training interactions (a refusal of its own)."""
    import numpy as np

    from gnn.data import SplitDataset
    from gnn.distributed import DistributedTrainer

    dataset = dataset_for("tiny")
    if rank == 1:
        none = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        dataset = SplitDataset(name="empty", n_users=30, n_items=40, train=none, valid=None,
                               test=(np.array([0]), np.array([1])), user_ids=np.arange(30),
                               item_ids=np.arange(40), protocol="given")
    DistributedTrainer(TrainConfig(**config_kw), dataset=dataset, log=lambda *a: None)
    return "started"


def start(rank: int, configs: list, datasets: list) -> str:
    """Build a DistributedTrainer with this rank's config and dataset; "ok" if it starts."""
    from gnn.distributed import DistributedTrainer

    DistributedTrainer(TrainConfig(**configs[rank]), dataset=dataset_for(datasets[rank]),
                       log=lambda *a: None)
    return "ok"


def two_nodes_three_items(rank: int, world: int) -> str:
    """A graph of 1 user and 2 items (3 nodes) on ``world`` ranks."""
    import numpy as np

    from gnn.data import SplitDataset
    from gnn.distributed import DistributedTrainer

    one = np.array([0]), np.array([1])
    ds = SplitDataset(name="three", n_users=1, n_items=2, train=(np.array([0]), np.array([0])),
                      valid=None, test=one, user_ids=np.arange(1), item_ids=np.arange(2),
                      protocol="given")
    DistributedTrainer(TrainConfig(**tiny_config(dataset="three")), dataset=ds)
    return "ok"


def dies_at_step(rank: int, config_kw: dict, victim: int, step: int, how: str) -> str:
    """Train; rank ``victim`` exits (``how="exit"``) or stops answering (``"hang"``) at its
    ``step``-th step. Returns what the fit raised on this rank."""
    import os
    import time

    from gnn.distributed import DistributedError, DistributedTrainer

    trainer = DistributedTrainer(TrainConfig(**config_kw), dataset=dataset_for("tiny"),
                                 log=lambda *a: None)
    inner, count = trainer.train_step, [0]

    def step_or_die(u, i, j):
        count[0] += 1
        if rank == victim and count[0] == step:
            if how == "exit":
                os._exit(3)
            time.sleep(float(os.environ["GNN_DIST_TIMEOUT"]) * 4)
        return inner(u, i, j)

    trainer.train_step = step_or_die
    started = time.monotonic()
    try:
        trainer.fit()
    except DistributedError as exc:
        return f"DistributedError after {time.monotonic() - started:.1f}s: {exc}"
    return "finished"


def two_layer_gradient(rank: int, seed: int) -> dict:
    """``loss = Σ W ⊙ Â(ÂX)`` through two halo exchanges and csr_spmm on this rank's rows:
    the rank's rows of the loss's gradient in X (float64), and of the reference ``ÂᵀÂᵀW``."""
    import os

    import torch.distributed as dist
    from gnn.distributed import Partition, local_graph
    from gnn.distributed.exchange import exchange, halo_plan
    from gnn.kernels import csr_spmm
    from random_graphs import random_adjacency

    dist.init_process_group("gloo")
    adj = random_adjacency(seed)
    part = Partition.of(adj, int(os.environ["WORLD_SIZE"]))
    g = local_graph(adj, part, rank)
    plan = halo_plan(g.halo, part, rank)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(adj.n_nodes, 5, generator=gen, dtype=torch.float64)
    w = torch.randn(adj.n_nodes, 5, generator=gen, dtype=torch.float64)
    own = x[g.lo: g.hi].clone().requires_grad_()
    h = own
    for _ in range(2):
        buffer = g.assemble(h, exchange(h.index_select(0, plan.send_index), plan))
        h = csr_spmm(g.rowptr, g.col, g.val.double(), buffer, transpose=g.transpose)
    (h * w[g.lo: g.hi]).sum().backward()
    a = adj.to_scipy()
    want = a.T @ (a.T @ w.numpy())
    forward = a @ (a @ x.numpy())
    return {"grad": own.grad.numpy(), "want": want[g.lo: g.hi], "out": h.detach().numpy(),
            "forward": forward[g.lo: g.hi], "halo": int(g.halo.numel())}
