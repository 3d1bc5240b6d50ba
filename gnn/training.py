"""BPR training with full-ranking evaluation, early stopping, checkpoints and exact resume.

One epoch visits every training pair once in a seeded random order, draws one negative per
pair (uniform over the user's non-interacted items), and takes one optimiser step per batch,
each step running a full-graph propagation (as NGCF's and LightGCN's official code do).

Protocols (DESIGN.md §3):
* with a validation split: evaluate every ``eval_every`` epochs, stop after ``patience``
  evaluations without a better validation recall@20, and report the test metrics of the best
  validation epoch (the test split never influences a choice);
* without one (the given train/test split of the paper protocol): run the fixed number of
  epochs and report the test metrics of the last epoch, with the learning curve.

Resume is exact on the CPU: all randomness of epoch ``e`` (order, negatives, dropout) comes from
generators re-seeded from ``(seed, e)`` at the start of the epoch, and the checkpoint written at
each epoch's end holds the weights, the optimiser state and the early-stopping state.
"""
from __future__ import annotations

import copy
import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from gnn.checkpoint import load_checkpoint, save_checkpoint
from gnn.csr import csr_from_pairs
from gnn.evaluate import evaluate_ranking
from gnn.graph import build_adjacency
from gnn.loss import bpr_loss
from gnn.models import MODELS

MAIN_METRIC = "recall@20"


@dataclass
class TrainConfig:
    """Everything that defines a run (the CLI's flags map one to one onto these fields)."""

    model: str = "ngcf"
    dataset: str = "ml-latest-small"
    data_root: Optional[str] = None
    split: str = "auto"  # auto: "given" for train.txt/test.txt datasets, else "random"
    min_rating: Optional[float] = None
    epochs: int = 400
    batch_size: int = 2048
    lr: float = 1e-3
    reg: float = 1e-4
    reg_on: str = "initial"  # "initial" (layer-0, LightGCN) or "final" (NGCF official code)
    dim: int = 64
    layers: int = 3
    message_dropout: float = 0.1
    node_dropout: float = 0.0
    adjacency: str = "sym"  # "sym" (D^-1/2 A D^-1/2) or "row" (D^-1 (A+I), NGCF official)
    seed: int = 0
    device: str = "auto"
    eval_every: int = 1
    patience: int = 20
    ks: Sequence[int] = (20,)
    eval_chunk: int = 1024
    checkpoint: Optional[str] = None
    resume: bool = False
    json: Optional[str] = None
    progress: bool = True

    def __post_init__(self):
        self.ks = tuple(sorted(set(int(k) for k in self.ks) | {20}))
        checks = [
            (self.model in MODELS, f"model must be one of {sorted(MODELS)}, but got {self.model!r}"),
            (self.epochs >= 0, f"epochs must be >= 0, but got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, but got {self.batch_size}"),
            (self.lr > 0, f"lr must be > 0, but got {self.lr}"),
            (self.reg >= 0, f"reg must be >= 0, but got {self.reg}"),
            (self.reg_on in ("initial", "final"), f"reg_on must be 'initial' or 'final', but got {self.reg_on!r}"),
            (self.dim >= 1, f"dim must be >= 1, but got {self.dim}"),
            (self.layers >= 0, f"layers must be >= 0, but got {self.layers}"),
            (self.adjacency in ("sym", "row"), f"adjacency must be 'sym' or 'row', but got {self.adjacency!r}"),
            (self.eval_every >= 1, f"eval_every must be >= 1, but got {self.eval_every}"),
            (self.patience >= 1, f"patience must be >= 1, but got {self.patience}"),
            (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
             f"device must be auto, cpu or cuda, but got {self.device!r}"),
            (not self.resume or self.checkpoint, "resume needs a checkpoint path"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"TrainConfig: {message}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ks"] = list(self.ks)
        return d

    # Fields that may differ between a run and its resumption.
    RESUMABLE_CHANGES = ("epochs", "checkpoint", "resume", "json", "progress", "device", "data_root",
                         "eval_chunk")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no CUDA device")
    return device


def resolve_split(config: TrainConfig) -> str:
    """``auto`` means the paper protocol for train.txt/test.txt datasets, else random 0.8/0.1/0.1."""
    if config.split != "auto":
        return config.split
    from gnn.data import TEXT_DATASETS

    path = Path(config.dataset)
    is_text = config.dataset in TEXT_DATASETS or (path.is_dir() and (path / "train.txt").exists())
    return "given" if is_text else "random"


def epoch_seed(seed: int, epoch: int) -> int:
    """A distinct, reproducible seed for each (run seed, epoch)."""
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63 - 1)


def build_model(config: TrainConfig, adj):
    if config.model == "ngcf":
        return MODELS["ngcf"](adj, dim=config.dim, layers=config.layers,
                              message_dropout=config.message_dropout,
                              node_dropout=config.node_dropout,
                              self_loop=config.adjacency == "sym")
    if config.model == "lightgcn":
        return MODELS["lightgcn"](adj, dim=config.dim, num_layers=config.layers)
    return MODELS["mf"](adj, dim=config.dim)


class Trainer:
    """Holds the dataset, the graph, the model, the optimiser and the run's history."""

    def __init__(self, config: TrainConfig, dataset=None, log=print):
        from gnn.data import UniformNegativeSampler, load_dataset  # data never imports us

        self.config, self.log = config, log
        self.device = resolve_device(config.device)
        if dataset is None:
            dataset = load_dataset(config.dataset, config.data_root, split=resolve_split(config),
                                   min_rating=config.min_rating, seed=config.seed)
        self.dataset = dataset
        n_users, n_items = dataset.n_users, dataset.n_items
        train_u, train_i = (np.asarray(a, dtype=np.int64) for a in dataset.train)
        # Duplicates collapse: each distinct training pair is visited once per epoch.
        self.train_csr = csr_from_pairs(train_u, train_i, n_users)
        indptr, indices = self.train_csr
        train_u = np.repeat(np.arange(n_users), np.diff(indptr))
        train_i = indices
        self.n_train = int(train_i.size)
        if self.n_train == 0:
            raise ValueError(f"dataset {dataset.name!r} has no training interactions")
        self.valid_csr = (csr_from_pairs(*dataset.valid, n_users)
                          if dataset.valid is not None and len(dataset.valid[0]) else None)
        self.test_csr = csr_from_pairs(*dataset.test, n_users)

        torch.manual_seed(config.seed)  # initial weights
        adj = build_adjacency(train_u, train_i, n_users, n_items, norm=config.adjacency,
                              self_loops=config.adjacency == "row")
        self.model = build_model(config, adj).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.users = torch.from_numpy(train_u).to(self.device)
        self.items = torch.from_numpy(train_i).to(self.device)
        self.sampler = UniformNegativeSampler(train_u, train_i, n_users, n_items,
                                              device=self.device, seed=config.seed)
        self.order_generator = torch.Generator(device=self.device)
        self.history: list[dict] = []
        self.epoch_seconds: list[float] = []
        self.epoch = 0  # epochs completed
        self.best: Optional[dict] = None
        self.best_state = None
        self.bad_evals = 0

    # -- one epoch ---------------------------------------------------------------------------
    def train_epoch(self) -> float:
        """Run epoch ``self.epoch + 1``; returns its mean BPR loss."""
        cfg, epoch = self.config, self.epoch + 1
        seed = epoch_seed(cfg.seed, epoch)
        torch.manual_seed(seed)  # dropout
        self.order_generator.manual_seed(seed + 1)
        self.sampler.reseed(seed + 2)  # negatives
        self.model.train()
        order = torch.randperm(self.n_train, device=self.device, generator=self.order_generator)
        users, positives = self.users[order], self.items[order]
        negatives = self.sampler.sample(users)
        n_batches = -(-self.n_train // cfg.batch_size)
        loss_weight = [min(cfg.batch_size, self.n_train - b * cfg.batch_size) for b in range(n_batches)]
        total = torch.zeros((), device=self.device)
        bar = _progress(n_batches, f"epoch {epoch}", cfg.progress)
        for b in range(n_batches):
            sl = slice(b * cfg.batch_size, (b + 1) * cfg.batch_size)
            loss = self.train_step(users[sl], positives[sl], negatives[sl])
            total += loss * loss_weight[b]
            if bar is not None:
                bar.update(1)
                if b % 10 == 0 or b == n_batches - 1:
                    bar.set_postfix(loss=f"{loss.item():.4f}")
        if bar is not None:
            bar.close()
        self.epoch = epoch
        return float(total) / self.n_train

    def train_step(self, u, i, j) -> torch.Tensor:
        """One optimiser step on the triples ``(u, i, j)``; returns the (detached) batch loss."""
        loss = self._batch_loss(u, i, j)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def _batch_loss(self, u, i, j):
        eu, ei, ej = self.model.batch_embeddings(u, i, j)
        if self.config.reg_on == "initial":
            u0, i0 = self.model.initial_embeddings(u, i)
            j0 = self.model.item_embedding.weight[j]
        else:
            u0, i0, j0 = eu, ei, ej
        loss, _bpr, _l2 = bpr_loss(eu, ei, ej, u0, i0, j0, self.config.reg)
        return loss

    # -- evaluation --------------------------------------------------------------------------
    def evaluate(self, split: str) -> dict:
        """Full-ranking metrics on ``"valid"`` or ``"test"`` (seen items excluded)."""
        user_emb, item_emb = self.model.embeddings()
        if split == "valid":
            target, exclude = self.valid_csr, [self.train_csr]
        else:
            target = self.test_csr
            exclude = [self.train_csr] + ([self.valid_csr] if self.valid_csr is not None else [])
        metrics = evaluate_ranking(user_emb, item_emb, *target, exclude=exclude,
                                   ks=self.config.ks, chunk_size=self.config.eval_chunk)
        return {k: float(v) for k, v in metrics.items()}

    # -- the loop ------------------------------------------------------------------------------
    def fit(self) -> dict:
        cfg = self.config
        if cfg.resume:
            self.load(cfg.checkpoint)
            self.log(f"resumed from {cfg.checkpoint} after epoch {self.epoch}")
        while self.epoch < cfg.epochs and not self._should_stop():
            start = time.perf_counter()
            loss = self.train_epoch()
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            self.epoch_seconds.append(seconds)
            record = {"epoch": self.epoch, "loss": loss, "seconds": seconds}
            if self.epoch % cfg.eval_every == 0 or self.epoch == cfg.epochs:
                record.update(self._evaluate_and_select(loss))
            self.history.append(record)
            if cfg.checkpoint:
                self.save(cfg.checkpoint)
        stopped_early = self._should_stop()
        return self.summary(stopped_early)

    def _should_stop(self) -> bool:
        return self.valid_csr is not None and self.bad_evals >= self.config.patience

    def _evaluate_and_select(self, loss: float) -> dict:
        start = time.perf_counter()
        test = self.evaluate("test")
        out = {f"test_{k}": v for k, v in test.items()}
        if self.valid_csr is not None:
            valid = self.evaluate("valid")
            out.update({f"valid_{k}": v for k, v in valid.items()})
            improved = self.best is None or valid[MAIN_METRIC] > self.best[f"valid_{MAIN_METRIC}"]
        else:
            improved = True  # paper protocol: the last evaluation is the one reported
        out["eval_seconds"] = time.perf_counter() - start
        if improved:
            self.best = {"epoch": self.epoch, **out}
            self.best_state = copy.deepcopy(self.model.state_dict())
            self.bad_evals = 0
        else:
            self.bad_evals += 1
        shown = "  ".join(f"{k}={v:.4f}" for k, v in out.items()
                          if k.endswith(("recall@20", "ndcg@20")))
        self.log(f"epoch {self.epoch:4d}  loss={loss:.4f}  {shown}"
                 f"{'  *' if improved else ''}")
        return out

    # -- persistence --------------------------------------------------------------------------
    def state(self) -> dict:
        ds = self.dataset
        return {
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "model_state": self.model.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "best": self.best,
            "best_model_state": self.best_state,
            "bad_evals": self.bad_evals,
            "history": self.history,
            "epoch_seconds": self.epoch_seconds,
            "data": {
                "name": ds.name, "n_users": ds.n_users, "n_items": ds.n_items,
                "train_user": torch.from_numpy(np.repeat(np.arange(ds.n_users),
                                                         np.diff(self.train_csr[0]))),
                "train_item": torch.from_numpy(self.train_csr[1]),
                "user_ids": _ids_for_checkpoint(ds.user_ids),
                "item_ids": _ids_for_checkpoint(ds.item_ids),
                "item_titles": list(ds.item_titles) if ds.item_titles is not None else None,
            },
        }

    def save(self, path) -> None:
        save_checkpoint(self.state(), path)

    def load(self, path) -> None:
        state = load_checkpoint(path)
        saved = state["config"]
        for name, value in self.config.to_dict().items():
            if name in TrainConfig.RESUMABLE_CHANGES:
                continue
            if saved.get(name) != value:
                raise ValueError(f"{path}: cannot resume: the checkpoint was written with "
                                 f"{name}={saved.get(name)!r}, this run has {name}={value!r}")
        self.model.load_state_dict(state["model_state"])
        self.optimizer.load_state_dict(state["optimizer_state"])
        self.epoch = int(state["epoch"])
        self.best = state["best"]
        self.best_state = state["best_model_state"]
        self.bad_evals = int(state["bad_evals"])
        self.history = list(state["history"])
        self.epoch_seconds = list(state["epoch_seconds"])

    # -- report --------------------------------------------------------------------------------
    def summary(self, stopped_early: bool = False) -> dict:
        cfg, ds = self.config, self.dataset
        best = self.best or {}
        out = {
            "model": cfg.model,
            "dataset": ds.name,
            "protocol": "validation" if self.valid_csr is not None else "given-split",
            "epochs": self.epoch,
            "best_epoch": best.get("epoch"),
            "stopped_early": stopped_early,
        }
        for k in cfg.ks:
            for metric in ("recall", "precision", "ndcg", "hit"):
                out[f"{metric}@{k}"] = best.get(f"test_{metric}@{k}")
        if self.valid_csr is not None:
            out["valid_recall@20"] = best.get("valid_recall@20")
            out["valid_ndcg@20"] = best.get("valid_ndcg@20")
        out.update({
            "sec_per_epoch": statistics.median(self.epoch_seconds) if self.epoch_seconds else None,
            "device": _device_name(self.device),
            "n_users": ds.n_users,
            "n_items": ds.n_items,
            "n_train": self.n_train,
            "n_valid": int(self.valid_csr[1].size) if self.valid_csr is not None else 0,
            "n_test": int(self.test_csr[1].size),
            "config": cfg.to_dict(),
            "history": self.history,
        })
        return out


def write_json(summary: dict, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    tmp.replace(path)


def _ids_for_checkpoint(ids):
    ids = np.asarray(ids)
    if np.issubdtype(ids.dtype, np.integer):
        return torch.from_numpy(ids.astype(np.int64))
    return [str(x) for x in ids.tolist()]


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return "cpu"


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is optional: no bar then
        return None
    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True)
