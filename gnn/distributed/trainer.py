"""Graph-partitioned BPR training across processes: :class:`DistributedTrainer`.

It is :class:`gnn.Trainer` (same epoch loop, samplers, seeds, protocols, summary) with the model
split over the ranks (docs/DISTRIBUTED.md):

* start-up: every rank loads the dataset and builds the ordinary model with the run's seed
  (so the initial weights are one process's), checks that all ranks run the same config and
  data, partitions Â by nnz and keeps its rows, its slice of ``E^0`` and the replicated weights;
* a step: the global batch is sampled identically on every rank (the samplers and seeds are
  the single-process ones), each rank computes its share of the loss
  (:meth:`ShardedModel.loss`), backward (the exchanges' backward sends gradients to the owners),
  one ``all_reduce`` of the replicated weights' gradients and the loss, Adam on local weights;
* evaluation: :class:`ShardedEvaluator`, the same metrics as one process;
* checkpoints: sharded with ``torch.distributed.checkpoint`` (gnn/distributed/checkpoint.py).

Only rank 0 logs and shows a progress bar.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import torch
import torch.distributed as dist

from gnn.distributed.evaluation import ShardedEvaluator
from gnn.distributed.exchange import halo_plan
from gnn.distributed.model import ShardedModel
from gnn.distributed.partition import Partition, local_graph
from gnn.distributed.runtime import (REFUSALS, DistributedError, agree_on_refusal,
                                     check_same_run, collectives, dataset_fingerprint,
                                     init_process_group)
from gnn.training import Trainer
from gnn.training.config import resolve_device


def _silent(*args, **kwargs):
    return None


class DistributedTrainer(Trainer):
    """:class:`gnn.Trainer` over the ranks of the default process group (joined from torchrun's
    environment when not joined yet). ``timeout``: seconds a collective may wait (default
    ``$GNN_DIST_TIMEOUT`` or 300)."""

    checkpoint_is_folder = True

    def __init__(self, config, dataset=None, log=print, timeout: Optional[float] = None):
        if getattr(config, "compile", False):
            raise ValueError("TrainConfig: compile is not supported by distributed training yet "
                             "(the exchanges are collectives inside the step); drop --compile")
        if getattr(config, "negatives", 1) != 1 or getattr(config, "loss", "bpr") != "bpr":
            raise ValueError("TrainConfig: distributed training computes BPR with one negative "
                             "per pair; --negatives > 1 and --loss ccl run in one process")
        device = init_process_group(resolve_device(config.device), timeout)
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        main = self.rank == 0
        # The base class builds the ordinary model on the host (the single-process initial
        # weights); the devices' shares are made from it below.
        host_config = dataclasses.replace(config, device="cpu", progress=config.progress and main)
        refusal = None
        try:
            super().__init__(host_config, dataset, log=log if main else _silent)
        except REFUSALS as exc:  # the data, the checkpoint path, ...: every rank says so
            refusal = exc
        agree_on_refusal(self.rank, refusal, "the start-up")
        check_same_run(config, self.dataset, self.rank)
        self.dataset_fingerprint = dataset_fingerprint(self.dataset)
        self.config = dataclasses.replace(host_config, device=config.device)
        self.device = device
        full = self.model
        adj = full.adj
        self.partition = part = Partition.of(adj, self.world_size)
        graph = local_graph(adj, part, self.rank).to(device)
        with collectives(self.rank, "the start-up halo exchange"):
            plan = halo_plan(graph.halo, part, self.rank)
        self.model = ShardedModel(full, graph, part, self.rank, plan, adj.nnz).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        if device.type != "cpu":
            self.make_samplers(device)
        self.evaluators = self._sharded_evaluators()

    def _sharded_evaluators(self) -> dict:
        """The trainer's splits, each with its users spread over the ranks."""
        cfg = self.config
        return {name: ShardedEvaluator(target, exclude, cfg.ks, cfg.eval_chunk, self.partition,
                                       self.rank, self.device)
                for name, (target, exclude) in self.evaluation_splits().items()}

    # -- a step --------------------------------------------------------------------------------
    def train_step(self, u, i, j) -> torch.Tensor:
        """One optimiser step on the global batch; returns its (global) loss on every rank."""
        cfg = self.config
        with collectives(self.rank, f"a training step of epoch {self.epoch + 1}"):
            loss = self.model.loss(u, i, j, cfg.reg, reg_on=cfg.reg_on)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            total = self._all_reduce_replicated(loss.detach())
        self.optimizer.step()
        return total

    def _all_reduce_replicated(self, loss: torch.Tensor) -> torch.Tensor:
        """Sum the replicated weights' gradients and the loss shares over the ranks (one
        ``all_reduce``)."""
        params = self.model.replicated_parameters()
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads] + [loss.reshape(1)])
        if self.world_size > 1:
            dist.all_reduce(flat)
        offset = 0
        for p, g in zip(params, grads):
            p.grad = flat[offset: offset + g.numel()].view_as(g)
            offset += g.numel()
        return flat[-1]

    # -- evaluation ------------------------------------------------------------------------------
    def evaluate(self, split: str) -> dict:
        if split not in self.evaluators:
            raise ValueError(f"evaluate(): split must be one of {sorted(self.evaluators)}, "
                             f"but got {split!r}")
        was_training = self.model.training
        self.model.eval()
        try:
            with collectives(self.rank, f"the {split} evaluation"):
                return self.evaluators[split](self.model.final_rows())
        finally:
            self.model.train(was_training)

    # -- the loop ------------------------------------------------------------------------------
    def fit(self) -> dict:
        summary = super().fit()
        summary["world_size"] = self.world_size
        return summary

    def close(self, destroy: bool = False) -> None:
        """End a run that finished normally: every rank waits for the others (rank 0 may still
        be writing its files). ``destroy=True`` also destroys the process group; the CLI leaves
        that to process exit, since two gloo ranks destroying it at once can abort one of them
        ("terminate called without an active exception")."""
        if dist.is_initialized():
            with collectives(self.rank, "the final barrier"):
                dist.barrier()
            if destroy:
                dist.destroy_process_group()

    # -- checkpoints -----------------------------------------------------------------------------
    def save(self, path) -> None:
        from gnn.distributed.checkpoint import save_sharded

        with collectives(self.rank, f"saving the checkpoint {path}"):
            save_sharded(self, path)

    def load(self, path) -> None:
        from gnn.distributed.checkpoint import load_sharded

        with collectives(self.rank, f"loading the checkpoint {path}"):
            load_sharded(self, path)

    def save_model(self, path) -> None:
        """Write the model as one file for :func:`gnn.load_model` (rank 0 writes; collective)."""
        from gnn.distributed.checkpoint import full_state_dict
        from gnn.model_io import save_model

        with collectives(self.rank, f"gathering the model for {path}"):
            state = full_state_dict(self.model, self.model.state_dict())
        if self.rank == 0:
            save_model(self.full_model(state), path, dataset=self.dataset)

    def full_model(self, state: dict):
        """The ordinary (single-process) model with the weights of a full state dict."""
        from gnn.training.config import build_adjacency_for, build_model

        model = build_model(self.config, build_adjacency_for(self.config, self.dataset.train_csr))
        model.load_state_dict(state)
        return model.eval()


__all__ = ["DistributedTrainer", "DistributedError"]
