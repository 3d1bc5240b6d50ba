"""What defines a training run, and how a run's settings become an adjacency and a model.

The CLI's flags map one to one onto :class:`TrainConfig`'s fields; ``gnn.reproduce``'s configs
hold the same fields. The model is looked up in the registry (:mod:`gnn.models.registry`) and
builds itself from the config (``from_config``, ``adjacency_options``).
"""
from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Optional, Sequence

import torch

from gnn.adjacency import Adjacency, build_adjacency
from gnn.loss import Objective, make_objective
from gnn.models import get_model

MAIN_METRIC = "recall@20"
#: The fields that belong to some models only, each with the value that means "none of it"
#: (a model without layers is a 0-layer model; one without a dropout drops nothing).
MODEL_OPTIONS = {"layers": 0, "message_dropout": 0.0, "node_dropout": 0.0,
                 "cl_noise": 0.0, "cl_weight": 0.0, "cl_temperature": None, "cl_layer": None}


@dataclass
class TrainConfig:
    """Everything that defines a run (docs/DESIGN.md §3 for the objective and protocols)."""

    model: str = "ngcf"
    dataset: str = "ml-latest-small"
    data_root: Optional[str] = None
    split: str = "auto"  # auto: "given" for train.txt/test.txt datasets, else "random"
    min_rating: Optional[float] = None
    # "skip": malformed lines of the dataset's file are skipped and reported (gnn.data's
    # on_bad_line); the default "error" stops at the first with its file and line.
    on_bad_line: str = "error"
    epochs: int = 400
    batch_size: int = 2048
    lr: float = 1e-3
    reg: float = 1e-4
    reg_on: str = "initial"  # "initial" (layer-0, LightGCN) or "final" (NGCF official code)
    sampling: str = "user"  # "user": a user, then one of its items (official code, measured
    # better: docs/REPRODUCE.md "Sampling"); "pair": every training pair once per epoch
    # K exact uniform negatives per (user, positive) pair; 1 is the papers' BPR (DESIGN.md §3).
    negatives: int = 1
    loss: str = "bpr"  # the objective, a name of gnn.loss.OBJECTIVES: "bpr" or "ccl"
    # The loss's own options, named <loss>_<option> (LOSS_OPTIONS): None means the loss's
    # default; setting one of another loss is an error.
    ccl_margin: Optional[float] = None
    ccl_negative_weight: Optional[float] = None
    dim: int = 64
    # The model's own options (MODEL_OPTIONS): None means the model's default (its constructor's
    # argument), filled in when the config is made. Setting one the model does not have is an
    # error (its "none" value, 0, is allowed).
    layers: Optional[int] = None
    message_dropout: Optional[float] = None
    node_dropout: Optional[float] = None
    # XSimGCL's noise-contrastive view (gnn/models/xsimgcl.py): the noise length ε, the weight λ
    # of the contrastive term, its temperature τ and the layer l* contrasted with the output.
    cl_noise: Optional[float] = None
    cl_weight: Optional[float] = None
    cl_temperature: Optional[float] = None
    cl_layer: Optional[int] = None
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
    # A new run refuses to write its checkpoint over an existing one unless this is set.
    overwrite: bool = False
    json: Optional[str] = None
    save_model: Optional[str] = None  # the CLI writes the reported model here (gnn.recommend)
    progress: bool = True  # a bar on a terminal, else one line per epoch (gnn/training/report.py)
    # torch.set_num_threads(threads) when set (a process-wide setting, made only when asked);
    # None leaves torch's own choice.
    threads: Optional[int] = None
    # glibc's allocator keeps freed blocks for reuse (gnn/training/allocator.py): a setting of
    # the whole process, made only when asked.
    keep_freed_memory: bool = False

    def __post_init__(self):
        self.ks = tuple(sorted(set(int(k) for k in self.ks) | {20}))
        try:
            get_model(self.model)
        except ValueError as exc:
            raise ValueError(f"TrainConfig: {exc}") from None
        self._resolve_model_options()
        checks = [
            (self.epochs >= 0, f"epochs must be >= 0, but got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, but got {self.batch_size}"),
            (self.lr > 0, f"lr must be > 0, but got {self.lr}"),
            (self.reg >= 0, f"reg must be >= 0, but got {self.reg}"),
            (self.reg_on in ("initial", "final"), f"reg_on must be 'initial' or 'final', but got {self.reg_on!r}"),
            (self.sampling in ("pair", "user"), f"sampling must be 'pair' or 'user', but got {self.sampling!r}"),
            (isinstance(self.negatives, int) and not isinstance(self.negatives, bool)
             and self.negatives >= 1, f"negatives must be an int >= 1, but got {self.negatives!r}"),
            (self.dim >= 1, f"dim must be >= 1, but got {self.dim}"),
            (self.layers is None or self.layers >= 0, f"layers must be >= 0, but got {self.layers}"),
            (self.message_dropout is None or 0 <= self.message_dropout < 1,
             f"message_dropout must be in [0, 1), but got {self.message_dropout}"),
            (self.node_dropout is None or 0 <= self.node_dropout < 1,
             f"node_dropout must be in [0, 1), but got {self.node_dropout}"),
            (self.cl_noise is None or self.cl_noise >= 0, f"cl_noise must be >= 0, but got {self.cl_noise}"),
            (self.cl_weight is None or self.cl_weight >= 0, f"cl_weight must be >= 0, but got {self.cl_weight}"),
            (self.cl_temperature is None or self.cl_temperature > 0,
             f"cl_temperature must be > 0, but got {self.cl_temperature}"),
            (self.cl_layer is None or self.cl_layer >= 1, f"cl_layer must be >= 1, but got {self.cl_layer}"),
            (self.adjacency in ("sym", "row"), f"adjacency must be 'sym' or 'row', but got {self.adjacency!r}"),
            (self.eval_every >= 1, f"eval_every must be >= 1, but got {self.eval_every}"),
            (self.patience >= 1, f"patience must be >= 1, but got {self.patience}"),
            (self.eval_chunk >= 1, f"eval_chunk must be >= 1, but got {self.eval_chunk}"),
            (self.on_bad_line in ("error", "skip"),
             f"on_bad_line must be 'error' or 'skip', but got {self.on_bad_line!r}"),
            (self.threads is None or self.threads >= 1, f"threads must be >= 1, but got {self.threads}"),
            (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
             f"device must be auto, cpu or cuda, but got {self.device!r}"),
            (not self.resume or self.checkpoint, "resume needs a checkpoint path"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"TrainConfig: {message}")
        build_objective(self)  # the loss's name and options

    def _resolve_model_options(self) -> None:
        """Fill each model option left None with the model's default; refuse one the model
        does not have, unless it is None or its "none" value (MODEL_OPTIONS)."""
        defaults = get_model(self.model).option_defaults()
        for field, none_value in MODEL_OPTIONS.items():
            value = getattr(self, field)
            if field not in defaults:
                if value is not None and value != none_value:
                    takes = sorted(set(defaults) & set(MODEL_OPTIONS))
                    raise ValueError(f"TrainConfig: {field}={value!r} does not apply to model "
                                     f"{self.model!r} (its options: {', '.join(takes) or 'none'})"
                                     f"; leave it unset")
                setattr(self, field, None)
            elif value is None and defaults[field] is not inspect.Parameter.empty:
                setattr(self, field, defaults[field])

    @classmethod
    def from_dict(cls, saved: dict, **changes) -> "TrainConfig":
        """The config a checkpoint or summary saved (``to_dict``), with ``changes``. Options the
        model does not have are dropped: runs of earlier versions saved every option for every
        model (they were ignored)."""
        values = {**saved, **changes}
        options = get_model(values.get("model", cls.model)).option_defaults()
        for field in MODEL_OPTIONS:
            if field not in options and field not in changes:
                values.pop(field, None)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"TrainConfig: unknown field(s) {unknown}")
        return cls(**values)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ks"] = list(self.ks)
        return d

    # Fields that may differ between a run and its resumption: how long it goes on, how and how
    # often it is evaluated (the early-stopping state carries over: a smaller patience may stop
    # it at once), where it runs and what it prints or writes. The rest defines the trajectory
    # (data, model, objective, sampling, seed) and must stay as the checkpoint says.
    RESUMABLE_CHANGES = ("epochs", "eval_every", "patience", "ks", "eval_chunk", "checkpoint",
                         "resume", "overwrite", "json", "save_model", "progress", "threads",
                         "device", "data_root", "compile", "keep_freed_memory")

    def check_resumable(self, saved: dict, path) -> None:
        """ValueError naming the field unless a checkpoint written with config ``saved`` (a
        dict) can be resumed by this run (options a model does not have are not compared)."""
        try:
            saved = self.from_dict(saved).to_dict()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: cannot resume: its config is not valid here ({exc})") from None
        for name, value in self.to_dict().items():
            if name not in self.RESUMABLE_CHANGES and saved.get(name) != value:
                raise ValueError(f"{path}: cannot resume: the checkpoint was written with "
                                 f"{name}={saved.get(name)!r}, this run has {name}={value!r} "
                                 f"(a resumed run may change only "
                                 f"{', '.join(self.RESUMABLE_CHANGES)})")


#: The loss options of :class:`TrainConfig`: field -> (loss, the objective's option).
LOSS_OPTIONS = {"ccl_margin": ("ccl", "margin"), "ccl_negative_weight": ("ccl", "negative_weight")}


def build_objective(config: TrainConfig) -> Objective:
    """The :class:`gnn.loss.Objective` of ``config.loss`` with its options (LOSS_OPTIONS);
    ValueError naming the field for a bad value or an option of another loss."""
    options = {}
    for field, (loss, option) in LOSS_OPTIONS.items():
        value = getattr(config, field)
        if loss == config.loss:
            options[option] = value
        elif value is not None:
            raise ValueError(f"TrainConfig: {field}={value!r} applies to loss={loss!r} only, "
                             f"not loss={config.loss!r}; leave it unset")
    try:
        return make_objective(config.loss, **options)
    except ValueError as exc:
        fields_ = [f for f, (loss, _) in LOSS_OPTIONS.items() if loss == config.loss]
        where = f" (set by {', '.join(fields_)})" if fields_ else ""
        raise ValueError(f"TrainConfig: {exc}{where}") from None


def model_class(config: TrainConfig) -> type:
    """The registered class of ``config.model``."""
    return get_model(config.model)


def build_model(config: TrainConfig, adj: Adjacency):
    """The model a config asks for, on ``adj`` (the class's ``from_config``)."""
    return model_class(config).from_config(config, adj)


def build_adjacency_for(config: TrainConfig, train) -> Adjacency:
    """The training adjacency of a run from the training interactions (a UserItemCSR), with the
    model's ``adjacency_options``."""
    return build_adjacency(train, **model_class(config).adjacency_options(config))


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
