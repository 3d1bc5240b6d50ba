"""Sharded checkpoints of a distributed run (``torch.distributed.checkpoint``), re-sharding, and
the conversion to one file for :func:`gnn.load_model` and the single-process trainer.

A checkpoint is a folder (on a file system all ranks share)::

    PATH/.metadata, PATH/__<rank>_0.distcp   torch.distributed.checkpoint: the weights, Adam's
                                            state and the best validation weights; E^0 and its
                                            Adam moments as one (N, d) tensor in row shards
    PATH/run.json                           epoch, history, early-stopping state, config

``E^0`` is saved as a ``ShardedTensor`` whose shards are the ranks' row blocks, so a run with
another number of processes (or a single process, :func:`convert`) reads the rows it needs
whatever the partition was. The weights every rank holds whole are written once. A new
checkpoint is written beside the old one and renamed over it: a run killed while saving keeps
the previous checkpoint.

    python -m gnn.distributed.checkpoint PATH out.pt [--data-root DIR]

writes ``out.pt``, a single-process training checkpoint: ``gnn.load_model("out.pt")`` reads it,
and ``python -m gnn.train --checkpoint out.pt --resume ...`` continues the run in one process.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import sys
import warnings
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp

from gnn.checkpoint import DISTRIBUTED_FORMAT as FORMAT, read_run  # noqa: F401 (read_run: here too)
from gnn.distributed.exchange import gather_rows
from gnn.distributed.runtime import REFUSALS, agree_on_refusal, dataset_fingerprint

SHARDED = "node_embedding"  # the one tensor split by rows; everything else is replicated
TABLES = ("user_embedding.weight", "item_embedding.weight")
RUN_FIELDS = ("epoch", "best", "bad_evals", "history", "epoch_seconds")


# -- the tensors ---------------------------------------------------------------------------------
@contextlib.contextmanager
def _sharded_tensors():
    """Silences exactly torch's deprecation warning for ShardedTensor (one per tensor and call:
    a resume printed ten). It is deprecated in favour of DTensor, but a DTensor's row shards are
    torch.chunk's equal blocks, while ours are the partition's nnz-balanced row ranges; a
    ShardedTensor is how torch.distributed.checkpoint reads any rows of a tensor saved in other
    blocks (re-sharding to another world size)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning,
                                message="Please use DTensor instead and we are deprecating "
                                        "ShardedTensor")
        yield


def _row_sharded(local: torch.Tensor, lo: int, n_rows: int):
    """``local`` as rows ``[lo, lo + len(local))`` of an ``(n_rows, ...)`` ShardedTensor."""
    from torch.distributed._shard.metadata import ShardMetadata
    from torch.distributed._shard.sharded_tensor import Shard, init_from_local_shards

    size = [n_rows] + list(local.shape[1:])
    meta = ShardMetadata([lo] + [0] * (local.dim() - 1), list(local.shape),
                         f"rank:{dist.get_rank()}/{local.device}")
    with _sharded_tensors():
        return init_from_local_shards([Shard(local, meta)], size)


def _local(value) -> torch.Tensor:
    if not hasattr(value, "local_shards"):
        return value
    with _sharded_tensors():
        return value.local_shards()[0].tensor


def _state(trainer) -> dict:
    """The tensors of a checkpoint, named as the sharded model names them."""
    model, part = trainer.model, trainer.partition
    lo, _ = part.rows(trainer.rank)

    def wrap(name, t):
        return _row_sharded(t, lo, part.n_nodes) if name == SHARDED else t

    params = dict(model.named_parameters())
    optim = {}
    for name, p in params.items():
        st = trainer.optimizer.state.get(p)
        if st:
            optim[name] = {k: wrap(name, v) if k != "step" else v for k, v in st.items()}
    state = {"model": {k: wrap(k, v.detach()) for k, v in model.state_dict().items()},
             "optim": optim}
    if trainer.best_state is not None:
        state["best_model"] = {k: wrap(k, v) for k, v in trainer.best_state.items()}
    return state


def save_sharded(trainer, path) -> None:
    """Write the trainer's checkpoint folder (collective; rank 0 writes run.json)."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    main = trainer.rank == 0
    if main and partial.exists():
        shutil.rmtree(partial)
    dist.barrier()
    with _sharded_tensors():
        dcp.save(_state(trainer), checkpoint_id=partial)
    if main:
        run = {k: getattr(trainer, k) for k in RUN_FIELDS}
        run.update(format=FORMAT, config=trainer.config.to_dict(), world_size=trainer.world_size,
                   bounds=list(trainer.partition.bounds),
                   has_best_model=trainer.best_state is not None,
                   dataset=trainer.dataset_fingerprint)
        (partial / "run.json").write_text(json.dumps(run, indent=1) + "\n")
        old = path.with_name(path.name + ".old")
        if path.exists():
            path.rename(old)
        partial.rename(path)
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():  # a single-process file replaced with overwrite
            old.unlink()
    dist.barrier()


def load_sharded(trainer, path) -> None:
    """Resume ``trainer`` from a checkpoint folder written with any number of processes
    (collective; a rank that cannot use it makes every rank raise ValueError)."""
    refusal = None
    try:
        run = read_run(path)
        trainer.config.check_resumable(run["config"], path)
        saved = run.get("dataset")  # absent in checkpoints of earlier versions
        if saved is not None and saved != trainer.dataset_fingerprint:
            raise ValueError(f"{path}: cannot resume: the checkpoint was trained on other "
                             f"interactions ({saved}) than this run's "
                             f"({trainer.dataset_fingerprint})")
    except REFUSALS as exc:
        refusal = exc
    agree_on_refusal(trainer.rank, refusal, f"reading the checkpoint {path}")
    state = _state(trainer)
    params = dict(trainer.model.named_parameters())
    state["optim"] = {name: {k: _zeros_like(v) for k, v in
                             _adam_slots(state["model"][name]).items()} for name in params}
    if run["has_best_model"] and "best_model" not in state:
        state["best_model"] = {k: _zeros_like(v) for k, v in state["model"].items()}
    with _sharded_tensors():
        dcp.load(state, checkpoint_id=path)
    with torch.no_grad():
        for name, value in state["model"].items():
            trainer.model.state_dict()[name].copy_(_local(value))
    opt = trainer.optimizer.state_dict()
    index = {name: i for i, name in enumerate(params)}
    opt["state"] = {index[n]: {k: _local(v) for k, v in s.items()} for n, s in state["optim"].items()}
    trainer.optimizer.load_state_dict(opt)
    trainer.best_state = ({k: _local(v).clone() for k, v in state["best_model"].items()}
                          if run["has_best_model"] else None)
    for k in RUN_FIELDS:
        setattr(trainer, k, run[k])


def _adam_slots(like) -> dict:
    return {"step": torch.zeros(()), "exp_avg": like, "exp_avg_sq": like}


def _zeros_like(value):
    if hasattr(value, "local_shards"):
        with _sharded_tensors():
            shard = value.local_shards()[0]
            return _row_sharded(torch.zeros_like(shard.tensor), shard.metadata.shard_offsets[0],
                                value.size(0))
    return torch.zeros_like(value)


# -- one process ---------------------------------------------------------------------------------
def shard_to_full(state: dict, n_users: int) -> dict:
    """A sharded-model dict with the whole ``node_embedding`` to the ordinary model's names."""
    out = {k: v for k, v in state.items() if k != SHARDED}
    if SHARDED in state:
        out[TABLES[0]], out[TABLES[1]] = state[SHARDED][:n_users], state[SHARDED][n_users:]
    return out


def full_state_dict(model, shard_state: dict) -> dict:
    """The ordinary model's state dict from every rank's shard (collective; every rank gets it)."""
    lo, hi = model.graph.lo, model.graph.hi
    n = model.part.n_nodes
    whole = dict(shard_state)
    whole[SHARDED] = gather_rows(shard_state[SHARDED].detach(), lo, 0, n,
                                 world_size=model.part.world_size)
    assert whole[SHARDED].shape[0] == n and hi - lo == shard_state[SHARDED].shape[0]
    return {k: v.detach().cpu() for k, v in shard_to_full(whole, model.n_users).items()}


def convert(path, out, data_root=None, dataset=None, overwrite: bool = False) -> None:
    """Write the single-process training checkpoint of a checkpoint folder to ``out``
    (``dataset``: the run's dataset object, else loaded as the run's config says); an existing
    checkpoint at ``out`` is replaced only with ``overwrite``."""
    from gnn.training import TrainConfig, Trainer

    run = read_run(path)
    config = TrainConfig.from_dict(run["config"], device="cpu", progress=False,
                                   checkpoint=str(out), resume=False, overwrite=overwrite,
                                   data_root=data_root or run["config"].get("data_root"))
    trainer = Trainer(config, dataset, log=lambda *a: None)
    model, n_users = trainer.model, trainer.model.n_users
    tables = {k: v for k, v in model.state_dict().items() if k not in TABLES}
    tables[SHARDED] = torch.zeros(model.n_users + model.n_items,
                                  model.user_embedding.weight.shape[1])

    def fresh():
        return {k: torch.zeros_like(v) for k, v in tables.items()}

    state = {"model": fresh(), "optim": {k: {s: torch.zeros_like(t) for s, t in
                                             _adam_slots(v).items()} for k, v in tables.items()}}
    if run["has_best_model"]:
        state["best_model"] = fresh()
    with warnings.catch_warnings():  # the load is meant to be single-process: no_dist=True
        warnings.filterwarnings("ignore", message="torch.distributed is .*assuming the intent "
                                                  "is to load in a single process")
        dcp.load(state, checkpoint_id=path, no_dist=True)
    model.load_state_dict(shard_to_full(state["model"], n_users))
    per_param = {}
    for name, slots in state["optim"].items():
        for slot, value in slots.items():
            split = (shard_to_full({name: value}, n_users) if slot != "step" else
                     {t: value.clone() for t in (TABLES if name == SHARDED else (name,))})
            for target, part in split.items():
                per_param.setdefault(target, {})[slot] = part
    names = [n for n, _ in model.named_parameters()]
    opt = trainer.optimizer.state_dict()
    opt["state"] = {i: per_param[n] for i, n in enumerate(names)}
    trainer.optimizer.load_state_dict(opt)
    trainer.best_state = (shard_to_full(state["best_model"], n_users)
                          if run["has_best_model"] else None)
    for k in RUN_FIELDS:
        setattr(trainer, k, run[k])
    # The file keeps the run's own device and progress (the conversion ran quietly on the CPU).
    trainer.config = dataclasses.replace(config, device=run["config"].get("device", "auto"),
                                         progress=run["config"].get("progress", True))
    trainer.save(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m gnn.distributed.checkpoint",
                                description="Convert a distributed checkpoint folder to one "
                                            "file (gnn.load_model, single-process resume).")
    p.add_argument("checkpoint", help="the folder written by a distributed run")
    p.add_argument("out", help="the single-process checkpoint file to write")
    p.add_argument("--data-root", default=None,
                   help="where the run's dataset is (default: the run's own, else $GNN_DATA)")
    p.add_argument("--overwrite", action="store_true", help="replace a checkpoint at OUT")
    args = p.parse_args(argv)
    try:
        convert(args.checkpoint, args.out, args.data_root, overwrite=args.overwrite)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
