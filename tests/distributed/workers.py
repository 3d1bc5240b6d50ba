"""What each rank runs in the distributed tests (spawned by ranks.run_ranks), and the same
recording on one process for the reference."""
from __future__ import annotations

import torch

from gnn import TrainConfig, Trainer


def dataset_for(name):
    """The dataset object a test names ("tiny": a seeded synthetic split; otherwise None, so the
    trainer loads config.dataset itself)."""
    if name == "tiny":
        from tiny_datasets import tiny_split

        return tiny_split(seed=3, n_users=30, n_items=40)
    return None


def tiny_config(**kw) -> dict:
    base = dict(model="ngcf", dataset="tiny", epochs=4, batch_size=16, lr=0.05, dim=8, layers=2,
                device="cpu", progress=False, message_dropout=0.0, node_dropout=0.0, seed=5)
    base.update(kw)
    return base


def record(trainer, steps: int) -> dict:
    """Per-step losses of the first ``steps`` steps (whole epochs), then the metrics."""
    losses = []
    step = trainer.train_step

    def recorded(u, i, j):
        loss = step(u, i, j)
        losses.append(float(loss))
        return loss

    trainer.train_step = recorded
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
    losses = []
    step = trainer.train_step

    def recorded(u, i, j):
        loss = step(u, i, j)
        losses.append(float(loss))
        return loss

    trainer.train_step = recorded
    summary = trainer.fit()
    return {"losses": losses, "summary": summary}


def checkpoints(rank: int, config_kw: dict, folder: str, phase: str) -> dict:
    """phase "first": an uninterrupted 2-epoch run (checkpoint and model file written), then a
    1-epoch run whose checkpoint is copied (for the other world sizes) and resumed to 2 epochs.
    phase "resume": resume the copy for this world size to 2 epochs."""
    import dataclasses
    import shutil
    from pathlib import Path

    import torch.distributed as dist

    from gnn.distributed import DistributedTrainer

    folder, world = Path(folder), int(__import__("os").environ["WORLD_SIZE"])
    base = TrainConfig(**config_kw)

    def trainer(**kw):
        return DistributedTrainer(dataclasses.replace(base, **kw), dataset=dataset_for("tiny"),
                                  log=lambda *a: None)

    out = {}
    if phase == "first":
        full = trainer(epochs=2, checkpoint=str(folder / "full"))
        out["full"] = fit_recorded(full)
        full.save_model(folder / "model.pt")
        trainer(epochs=1, checkpoint=str(folder / "epoch1")).fit()
        if rank == 0:
            for copy in ("resume1", "resume2", "resume3"):
                shutil.copytree(folder / "epoch1", folder / copy)
        dist.barrier()
    out["resumed"] = fit_recorded(trainer(epochs=2, checkpoint=str(folder / f"resume{world}"),
                                          resume=True))
    return out
