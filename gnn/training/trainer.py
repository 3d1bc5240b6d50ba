"""Training (BPR or another objective of gnn/loss.py) with full-ranking evaluation, early
stopping, checkpoints and exact resume.

One epoch draws ``n_train`` (user, positive) pairs (``sampling="pair"``: every training pair
once, in a seeded random order; ``"user"``: a uniform user, then one of its positives, as the
official NGCF / LightGCN code), ``negatives`` uniform negatives per pair (items the user has not
seen in training), and takes one optimiser step per batch, each running a full-graph
propagation.

Protocols (docs/DESIGN.md §3):

* with a validation split: evaluate on validation every ``eval_every`` epochs, stop after
  ``patience`` evaluations without a better validation recall@20, load the best epoch's weights
  and evaluate the test split once, with them (the test split never influences a choice);
* without one (the given train/test split of the paper protocol): run the fixed number of
  epochs, evaluate the test split every ``eval_every`` epochs (the learning curve) and report
  the last evaluation.

Resume is exact on the CPU: all randomness of epoch ``e`` (order, negatives, dropout) comes from
generators re-seeded from ``(seed, e)`` at the start of the epoch, and the checkpoint written at
each epoch's end holds the weights, the optimiser state and the early-stopping state.

Nothing here changes process-wide settings unless the config asks: ``keep_freed_memory`` (CPU)
makes glibc keep freed blocks for reuse (gnn/training/allocator.py).
"""
from __future__ import annotations

import copy
import time
from typing import Optional

import torch

from gnn.evaluation import Evaluator
from gnn.model_io import model_payload
from gnn.checkpoint import check_new_checkpoint, load_checkpoint, save_checkpoint
from gnn.training.allocator import keep_freed_memory
from gnn.training.compiled_step import make_compiled_step
from gnn.training.config import (MAIN_METRIC, TrainConfig, build_adjacency_for, build_model,
                                 build_objective, epoch_seed, resolve_device, resolve_split)
from gnn.training.report import progress_bar, progress_bar_shown, summarize


class Trainer:
    """Holds the dataset, the graph, the model, the optimiser and the run's history.

    After :meth:`fit`, ``trainer.model`` holds the weights the reported metrics belong to (the
    best validation epoch's, or the last epoch's under the paper protocol).
    """

    #: Whether this trainer's checkpoint is a folder (gnn.distributed) rather than one file.
    checkpoint_is_folder = False

    def __init__(self, config: TrainConfig, dataset=None, log=print):
        from gnn.data import load_dataset

        self.config, self.log = config, log
        self.device = resolve_device(config.device)
        if config.checkpoint and not config.resume:  # before any work: another run's is kept
            check_new_checkpoint(config.checkpoint, overwrite=config.overwrite,
                                 folder=self.checkpoint_is_folder)
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        if config.keep_freed_memory and self.device.type == "cpu" and not keep_freed_memory():
            log("keep_freed_memory: this C library has no glibc mallopt; setting not made")
        if dataset is None:
            dataset = load_dataset(config.dataset, config.data_root, split=resolve_split(config),
                                   min_rating=config.min_rating, seed=config.seed,
                                   on_bad_line=config.on_bad_line)
        self.dataset = ds = dataset
        self.n_train = ds.train_csr.nnz  # duplicates collapsed
        if self.n_train == 0:
            raise ValueError(f"dataset {ds.name!r} has no training interactions")
        self.has_validation = ds.valid_csr is not None
        self.evaluators = {name: Evaluator(target, exclude, ks=config.ks,
                                           chunk_size=config.eval_chunk, device=self.device)
                           for name, (target, exclude) in self.evaluation_splits().items()}

        torch.manual_seed(config.seed)  # initial weights
        self.model = build_model(config, build_adjacency_for(config, ds.train_csr)).to(self.device)
        self.objective = build_objective(config)  # BPR, or the config's loss (gnn/loss.py)
        # Fused Adam: one pass over each parameter, its gradient and both moments (7 table
        # passes, not the ~18 of the op-by-op version torch picks on the CPU). Its state_dict
        # is plain Adam's.
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, fused=True)
        self._compiled_step = None  # built on first use (after a resume has loaded the state)
        self.make_samplers(self.device)
        self.history: list[dict] = []
        self.epoch_seconds: list[float] = []
        self.epoch = 0  # epochs completed
        self.best: Optional[dict] = None
        self.best_state = None
        self.bad_evals = 0
        self.test_metrics: Optional[dict] = None
        self.resumed = False

    def evaluation_splits(self) -> dict:
        """``{split: (target, exclude)}`` of the protocols (docs/DESIGN.md §3): test excludes
        the training (and validation) items, validation the training items."""
        ds = self.dataset
        splits = {"test": (ds.test_csr, [ds.train_csr] + ([ds.valid_csr] if self.has_validation
                                                          else []))}
        if self.has_validation:
            splits["valid"] = (ds.valid_csr, [ds.train_csr])
        return splits

    def make_samplers(self, device) -> None:
        """The epoch's positive and negative samplers and the order generator, on ``device``."""
        from gnn.data import PositiveSampler, UniformNegativeSampler

        ds, cfg = self.dataset, self.config
        self.positives = PositiveSampler(ds.train_csr, mode=cfg.sampling, device=device)
        self.negatives = UniformNegativeSampler(ds.train_csr, device=device, seed=cfg.seed)
        self.order_generator = torch.Generator(device=device)

    # -- one epoch ---------------------------------------------------------------------------
    def train_epoch(self, max_batches: Optional[int] = None,
                    step_seconds: Optional[list] = None) -> float:
        """Run epoch ``self.epoch + 1``; returns its mean training loss.

        ``max_batches`` stops after that many steps (a timing probe; the epoch then does not
        count as done); with a list ``step_seconds``, each step is synchronised and timed.
        """
        cfg, epoch = self.config, self.epoch + 1
        seed = epoch_seed(cfg.seed, epoch)
        torch.manual_seed(seed)  # dropout
        self.order_generator.manual_seed(seed + 1)
        self.negatives.reseed(seed + 2)
        self.model.train()
        users, positives = self.positives.epoch(self.order_generator)
        k = cfg.negatives
        # One negative: the epoch's at once. K: each batch's (B, K) as it comes, so memory stays
        # O(batch * K) (the same stream on the CPU; CUDA's Philox may split it differently).
        negatives = self.negatives.sample(users, check=False) if k == 1 else None
        n = users.numel()
        n_batches = -(-n // cfg.batch_size)
        if max_batches is not None:
            n_batches = min(n_batches, max_batches)
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        total = torch.zeros((), device=self.device)
        bar = progress_bar(n_batches, f"epoch {epoch}", cfg.progress)
        for b in range(n_batches):
            sl = slice(b * cfg.batch_size, (b + 1) * cfg.batch_size)
            if step_seconds is not None:
                sync()
                start = time.perf_counter()
            j = negatives[sl] if k == 1 else self.negatives.sample(users[sl], k=k, check=False)
            loss = self.train_step(users[sl], positives[sl], j)
            if step_seconds is not None:
                sync()
                step_seconds.append(time.perf_counter() - start)
            total += loss * min(cfg.batch_size, n - b * cfg.batch_size)  # no host sync
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        if max_batches is None:
            self.epoch = epoch
        return float(total) / min(n, n_batches * cfg.batch_size)

    def train_step(self, u, i, j) -> torch.Tensor:
        """One optimiser step on the pairs ``(u, i)`` with their negatives ``j`` ((B,) or
        (B, K)) under the config's objective; returns the (detached) batch loss.

        With ``config.compile`` the step is one compiled graph (gnn/training/compiled_step.py);
        either way it reads nothing back to the host.
        """
        if self.config.compile:
            if self._compiled_step is None:
                mode = "reduce-overhead" if self.device.type == "cuda" else None
                self._compiled_step = make_compiled_step(self.model, self.optimizer,
                                                         self.config.reg, self.config.reg_on, mode,
                                                         objective=self.objective)
            return self._compiled_step(u, i, j)
        loss = self.model.loss(u, i, j, self.config.reg, reg_on=self.config.reg_on, check=False,
                               objective=self.objective)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    # -- evaluation --------------------------------------------------------------------------
    def evaluate(self, split: str) -> dict:
        """Full-ranking metrics of the current weights on ``"valid"`` or ``"test"``."""
        if split not in self.evaluators:
            raise ValueError(f"evaluate(): split must be one of {sorted(self.evaluators)}, "
                             f"but got {split!r}")
        metrics = self.evaluators[split](*self.model.embeddings())
        return {k: float(v) for k, v in metrics.items()}

    # -- the loop ------------------------------------------------------------------------------
    def fit(self) -> dict:
        """Train (resuming when asked), then return the run's summary with the model holding
        the weights its test metrics belong to."""
        cfg = self.config
        if cfg.resume and not self.resumed:
            self.resume()
        if cfg.resume and self.epoch >= cfg.epochs:
            self.log(f"no epoch to train: the run is at epoch {self.epoch}, epochs={cfg.epochs}")
        # Off a terminal (a log file, a pipe) no bar: one line per epoch instead.
        epoch_lines = cfg.progress and not progress_bar_shown(cfg.progress)
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
            elif epoch_lines:
                self.log(f"epoch {self.epoch:4d}  loss={loss:.4f}  {seconds:.2f} s")
            self.history.append(record)
            if cfg.checkpoint:
                self.save(cfg.checkpoint)
        stopped_early = self._should_stop()
        if self.has_validation and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
            self.test_metrics = self.evaluate("test")
        elif self.best is not None:
            self.test_metrics = {k[len("test_"):]: v for k, v in self.best.items()
                                 if k.startswith("test_")}
        return summarize(self, stopped_early)

    def _should_stop(self) -> bool:
        return self.has_validation and self.bad_evals >= self.config.patience

    def _evaluate_and_select(self, loss: float) -> dict:
        start = time.perf_counter()
        split = "valid" if self.has_validation else "test"
        out = {f"{split}_{k}": v for k, v in self.evaluate(split).items()}
        out["eval_seconds"] = time.perf_counter() - start
        # Paper protocol: the last evaluation is the one reported.
        improved = (not self.has_validation or self.best is None
                    or out[f"valid_{MAIN_METRIC}"] > self.best[f"valid_{MAIN_METRIC}"])
        if improved:
            self.best = {"epoch": self.epoch, **out}
            if self.has_validation:
                self.best_state = copy.deepcopy(self.model.state_dict())
            self.bad_evals = 0
        else:
            self.bad_evals += 1
        shown = "  ".join(f"{k}={v:.4f}" for k, v in out.items()
                          if k.endswith(("recall@20", "ndcg@20")))
        self.log(f"epoch {self.epoch:4d}  loss={loss:.4f}  {shown}{'  *' if improved else ''}")
        return out

    # -- persistence --------------------------------------------------------------------------
    def state(self) -> dict:
        """The checkpoint: the model (as :func:`gnn.save_model` writes it, so that
        :func:`gnn.load_model` reads a checkpoint too), the optimiser and the run's state."""
        return {
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "model": model_payload(self.model, self.dataset),
            "optimizer_state": self.optimizer.state_dict(),
            "best": self.best,
            "best_model_state": self.best_state,
            "bad_evals": self.bad_evals,
            "history": self.history,
            "epoch_seconds": self.epoch_seconds,
        }

    def save(self, path) -> None:
        save_checkpoint(self.state(), path)

    def resume(self) -> None:
        """Continue the run saved in ``config.checkpoint`` (weights, optimiser, epoch, history,
        early-stopping state). :meth:`fit` calls it when ``config.resume``; calling it first
        raises a checkpoint's problems (missing, another run's, another dataset's) before any
        training, as ValueError or FileNotFoundError naming the file."""
        self.load(self.config.checkpoint)
        self.resumed = True
        self.log(f"resumed from {self.config.checkpoint} after epoch {self.epoch}")

    def load(self, path) -> None:
        from gnn.data import UserItemCSR

        state = load_checkpoint(path)
        if "optimizer_state" not in state:
            raise ValueError(f"{path}: a saved model, not a training checkpoint: cannot resume")
        self.config.check_resumable(state["config"], path)
        ds = self.dataset
        saved = UserItemCSR.from_state_dict(state["model"]["train"], name=f"{path}: train")
        if saved != ds.train_csr:
            raise ValueError(f"{path}: cannot resume: the checkpoint was trained on other "
                             f"interactions ({saved.n_users} users x {saved.n_items} items, "
                             f"{saved.nnz} pairs) than this run's {ds.name!r} ({ds.n_users} x "
                             f"{ds.n_items}, {ds.train_csr.nnz} pairs)")
        try:
            self.model.load_state_dict(state["model"]["state_dict"])
            self.optimizer.load_state_dict(state["optimizer_state"])
        except (RuntimeError, ValueError, KeyError) as exc:
            why = " ".join(str(exc).split()) or type(exc).__name__
            raise ValueError(f"{path}: cannot resume: its weights do not fit this run's model "
                             f"({why[:300]})") from exc
        self.epoch = int(state["epoch"])
        self.best = state["best"]
        self.best_state = state["best_model_state"]
        self.bad_evals = int(state["bad_evals"])
        self.history = list(state["history"])
        self.epoch_seconds = list(state["epoch_seconds"])
