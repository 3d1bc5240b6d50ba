"""What defines a training run, and how a run's settings become an adjacency and a model.

The CLI's flags map one to one onto :class:`TrainConfig`'s fields; ``gnn.reproduce``'s configs
hold the same fields.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch

from gnn.adjacency import Adjacency, build_adjacency
from gnn.models import MODELS

MAIN_METRIC = "recall@20"


@dataclass
class TrainConfig:
    """Everything that defines a run (docs/DESIGN.md §3 for the objective and protocols)."""

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
    sampling: str = "user"  # "user": a user, then one of its items (official code, measured
    # better: docs/REPRODUCE.md "Sampling"); "pair": every training pair once per epoch
    dim: int = 64
    layers: int = 3
    message_dropout: float = 0.1
    node_dropout: float = 0.0
    adjacency: str = "sym"  # "sym" (D^-1/2 A D^-1/2) or "row" (D^-1 A; NGCF: D^-1 (A+I))
    seed: int = 0
    device: str = "auto"
    compile: bool = False  # one torch.compile graph per step (CUDA: captured as a CUDA graph)
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
            (self.sampling in ("pair", "user"), f"sampling must be 'pair' or 'user', but got {self.sampling!r}"),
            (self.dim >= 1, f"dim must be >= 1, but got {self.dim}"),
            (self.layers >= 0, f"layers must be >= 0, but got {self.layers}"),
            (0 <= self.message_dropout < 1, f"message_dropout must be in [0, 1), but got {self.message_dropout}"),
            (0 <= self.node_dropout < 1, f"node_dropout must be in [0, 1), but got {self.node_dropout}"),
            (self.adjacency in ("sym", "row"), f"adjacency must be 'sym' or 'row', but got {self.adjacency!r}"),
            (self.eval_every >= 1, f"eval_every must be >= 1, but got {self.eval_every}"),
            (self.patience >= 1, f"patience must be >= 1, but got {self.patience}"),
            (self.eval_chunk >= 1, f"eval_chunk must be >= 1, but got {self.eval_chunk}"),
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
                         "eval_chunk", "compile")

    def check_resumable(self, saved: dict, path) -> None:
        """ValueError naming the field unless a checkpoint written with config ``saved`` (a
        dict) can be resumed by this run."""
        for name, value in self.to_dict().items():
            if name not in self.RESUMABLE_CHANGES and saved.get(name) != value:
                raise ValueError(f"{path}: cannot resume: the checkpoint was written with "
                                 f"{name}={saved.get(name)!r}, this run has {name}={value!r}")


def adjacency_options(config: TrainConfig) -> dict:
    """``norm`` and ``self_loops`` of the training adjacency for a run.

    ``"row"`` is ``D^{-1} A``; for NGCF it is the official code's ``D^{-1}(A + I)`` (the layer
    then adds no self-loop of its own). With ``"sym"`` NGCF's layer adds the ``+ I`` itself.
    LightGCN and MF never get self-loops.
    """
    return {"norm": config.adjacency, "self_loops": config.model == "ngcf" and config.adjacency == "row"}


def build_model(config: TrainConfig, adj: Adjacency):
    """The model a config asks for, on ``adj``."""
    if config.model == "ngcf":
        return MODELS["ngcf"](adj, embedding_dim=config.dim, num_layers=config.layers,
                              message_dropout=config.message_dropout,
                              node_dropout=config.node_dropout)
    if config.model == "lightgcn":
        return MODELS["lightgcn"](adj, embedding_dim=config.dim, num_layers=config.layers,
                                  node_dropout=config.node_dropout)
    return MODELS["mf"](adj, embedding_dim=config.dim)


def build_adjacency_for(config: TrainConfig, train) -> Adjacency:
    """The training adjacency of a run from the training interactions (a UserItemCSR)."""
    return build_adjacency(train, **adjacency_options(config))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but torch sees no CUDA device "
                         f"(torch {torch.__version__}); use --device cpu")
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
