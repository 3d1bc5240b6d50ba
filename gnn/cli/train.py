"""Train a recommender from the command line: ``python -m gnn.train`` (or ``gnn-train``).

Examples::

    python -m gnn.train --model ngcf --dataset ml-latest-small
    python -m gnn.train --model lightgcn --dataset path/to/gowalla --epochs 1000 --eval-every 20
    python -m gnn.train --model mf --dataset ratings.csv --split temporal --json run.json
    python -m gnn.train --config configs/train/ngcf-ml-latest-small.json --epochs 50
    python -m gnn.train --resume --checkpoint run.pt --epochs 800    # the rest from run.pt

``--dataset`` takes a MovieLens release name (downloaded into ``--data-root`` / ``$GNN_DATA``
when absent), ``gowalla`` / ``yelp2018`` / ``amazon-book``, or a path: a folder with
``train.txt`` / ``test.txt`` (paper protocol: no validation split, metrics of the last epoch),
a MovieLens folder, or a delimited ``user,item[,rating,timestamp]`` file.

A run's settings come from the flags given, over ``--config FILE``'s (a JSON object of
TrainConfig fields), over TrainConfig's defaults. ``--resume`` takes every setting from the
checkpoint instead; flags given may then change only what TrainConfig.RESUMABLE_CHANGES lists
(epochs, evaluation, threads, device, progress, outputs). Every refusal is one line
``error: ...`` and exit status 2; under torchrun rank 0 alone prints it and the ranks exit 0
(torchrun turns any other status into a traceback of its own).
"""
from __future__ import annotations

import argparse
import sys

import torch

from gnn.distributed.runtime import launched_rank, under_torchrun
from gnn.models import BASELINES, MODELS
from gnn.training import TrainConfig, Trainer, write_json

DEFAULTS = TrainConfig()
# Flags whose TrainConfig field has another name or value (the others map one to one).
FLAG_FIELDS = {"k": lambda v: {"ks": v},
               "skip_bad_lines": lambda v: {"on_bad_line": "skip" if v else "error"},
               "config": lambda v: {}, "fit_options": lambda v: {}}


def refuse(message) -> int:
    """Print the one-line error (rank 0 only under torchrun) and return the exit status."""
    if launched_rank() == 0:
        print(f"error: {message}", file=sys.stderr)
    return 0 if under_torchrun() else 2


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors printed by rank 0 only under torchrun (see :func:`refuse`)."""

    def error(self, message):
        if launched_rank() == 0:
            self.print_usage(sys.stderr)
            print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(0 if under_torchrun() else 2)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default unless it is None (the help text then says what None means)."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def _model_defaults(field: str) -> str:
    """``"ngcf 3, lightgcn 3"``: the registered models' defaults of a model option."""
    defaults = {name: cls.option_defaults() for name, cls in MODELS.items()}
    return ", ".join(f"{name} {d[field]}" for name, d in defaults.items() if field in d) or "none"


def build_parser() -> argparse.ArgumentParser:
    paragraphs = __doc__.split("\n\n")
    p = _Parser(prog="python -m gnn.train", description=paragraphs[0], epilog=paragraphs[-1],
                formatter_class=_HelpFormatter)
    a = p.add_argument
    a("--config", default=None, metavar="FILE",
      help="a JSON object of TrainConfig fields (e.g. configs/train/ngcf-ml-latest-small.json); "
           "flags given override it")
    a("--model", choices=sorted(MODELS) + sorted(BASELINES), default=DEFAULTS.model,
      help="the model (gnn.register_model adds your own); "
           f"{', '.join(sorted(BASELINES))} are fitted in closed form (no training)")
    a("--fit-options", default=None, metavar="JSON",
      help="a closed-form model's hyperparameters as a JSON object, e.g. '{\"alpha\": 0.3}' for "
           "gfcf (the defaults are the papers' Gowalla settings)")
    a("--dataset", default=DEFAULTS.dataset, help="release name or path (see module help)")
    a("--data-root", default=None, help="dataset cache / folder (default: $GNN_DATA or ~/.cache/gnn)")
    a("--split", default=DEFAULTS.split, choices=["auto", "random", "temporal", "loo", "given"],
      help="auto: given for train.txt/test.txt datasets, else per-user random 0.8/0.1/0.1")
    a("--min-rating", type=float, default=None, help="keep only ratings >= this as interactions")
    a("--epochs", type=int, default=DEFAULTS.epochs, help="maximum number of epochs")
    a("--batch-size", type=int, default=DEFAULTS.batch_size, help="BPR triples per step")
    a("--lr", type=float, default=DEFAULTS.lr, help="Adam's learning rate")
    a("--reg", type=float, default=DEFAULTS.reg, help="L2 weight λ of the BPR regulariser")
    a("--reg-on", choices=["initial", "final"], default=DEFAULTS.reg_on,
      help="regularise layer-0 embeddings (LightGCN) or final ones (NGCF official code)")
    a("--sampling", choices=["pair", "user"], default=DEFAULTS.sampling,
      help="user: a uniform user, then one of its positives (the official NGCF / LightGCN "
           "code; measured better, docs/REPRODUCE.md); pair: every training pair once per epoch")
    a("--negatives", type=int, default=DEFAULTS.negatives, metavar="K",
      help="exact uniform negatives per (user, positive) pair (docs/DESIGN.md §3)")
    a("--loss", choices=["bpr", "ccl"], default=DEFAULTS.loss,
      help="bpr: BPR, the mean over the K negatives; ccl: SimpleX's cosine contrastive loss")
    a("--ccl-margin", type=float, default=None,
      help="ccl's margin m in [-1, 1) (default 0.9); --loss ccl only")
    a("--ccl-negative-weight", type=float, default=None,
      help="ccl's weight w > 0 of the negatives' mean (default 150); --loss ccl only")
    a("--dim", type=int, default=DEFAULTS.dim, help="embedding size")
    for flag, field, what in (("--layers", "layers", "number of propagation layers"),
                              ("--message-dropout", "message_dropout",
                               "dropout on each layer's output"),
                              ("--node-dropout", "node_dropout",
                               "probability of dropping each entry of the adjacency")):
        a(flag, type=float if "dropout" in field else int, default=None,
          help=f"{what}; only for models that have it, an error otherwise (default: the "
               f"model's: {_model_defaults(field)})")
    for flag, field, kind, what in (
            ("--cl-noise", "cl_noise", float, "XSimGCL's noise length ε per row"),
            ("--cl-weight", "cl_weight", float, "XSimGCL's weight λ of the contrastive term"),
            ("--cl-temperature", "cl_temperature", float, "XSimGCL's temperature τ"),
            ("--cl-layer", "cl_layer", int, "XSimGCL's layer l* contrasted with the output")):
        a(flag, type=kind, default=None,
          help=f"{what}; only for models that have it (default: {_model_defaults(field)})")
    a("--adjacency", choices=["sym", "row"], default=DEFAULTS.adjacency,
      help="sym: D^-1/2 A D^-1/2; row: D^-1 A (for NGCF D^-1 (A+I), as its official code)")
    a("--seed", type=int, default=DEFAULTS.seed, help="seed of the weights, samples and dropout")
    a("--device", default=DEFAULTS.device, help="auto, cpu or cuda")
    # The settings a resumed run may change both ways have a --no- form too.
    on_off = argparse.BooleanOptionalAction
    a("--compile", action=on_off, default=DEFAULTS.compile,
      help="run each training step as one torch.compile graph (on CUDA captured as a CUDA graph)")
    a("--keep-freed-memory", action=on_off, default=DEFAULTS.keep_freed_memory,
      help="CPU: let glibc keep freed memory in the process for reuse (mallopt), which saves "
           "page faults on large graphs; a process-wide setting (gnn/training/allocator.py)")
    a("--eval-every", type=int, default=DEFAULTS.eval_every, help="evaluate every N epochs")
    a("--patience", type=int, default=DEFAULTS.patience,
      help="stop after this many evaluations without a better validation recall@20")
    a("--k", type=int, nargs="+", default=list(DEFAULTS.ks), help="cut-offs K (20 is always added)")
    a("--eval-chunk", type=int, default=DEFAULTS.eval_chunk, help="users scored at a time")
    a("--checkpoint", default=None,
      help="write a checkpoint here after every epoch (a folder under torchrun); another run's "
           "checkpoint there is refused unless --resume or --overwrite")
    a("--resume", action="store_true",
      help="continue the run saved in --checkpoint with the settings saved in it; flags given "
           "may change only --epochs, evaluation (--eval-every, --patience, --k, --eval-chunk), "
           "--threads, --device, --[no-]compile, --[no-]keep-freed-memory, --[no-]progress and "
           "outputs (--json, --save-model, --checkpoint)")
    a("--overwrite", action="store_true",
      help="let a new run replace the checkpoint of another run at --checkpoint")
    a("--json", default=None, help="write a summary of the run here")
    a("--save-model", default=None,
      help="write the trained model (reported weights, ids, titles) here for gnn.recommend")
    a("--progress", action=on_off, default=DEFAULTS.progress,
      help="a progress bar on a terminal, else one line per epoch")
    a("--threads", type=int, default=None, metavar="N",
      help="torch's CPU threads (torch.set_num_threads); default: torch's own choice (the "
           "number of cores, or $OMP_NUM_THREADS; torchrun sets 1 per process)")
    a("--skip-bad-lines", action="store_true",
      help="skip malformed lines of the dataset's file and report how many and which, instead "
           "of stopping at the first (MovieLens, .inter and delimited files)")
    return p


def flag_fields(values: dict) -> dict:
    """TrainConfig fields from parsed flags (``{dest: value}``): one to one but for
    :data:`FLAG_FIELDS`."""
    out = {}
    for dest, value in values.items():
        out.update(FLAG_FIELDS[dest](value) if dest in FLAG_FIELDS else {dest: value})
    return out


def given_fields(argv=None) -> dict:
    """The TrainConfig fields set by the flags given in ``argv`` (none of the defaults)."""
    probe = build_parser()
    for action in probe._actions:
        action.default = argparse.SUPPRESS
    return flag_fields(vars(probe.parse_args(argv)))


def config_from_args(args) -> TrainConfig:
    """The config of every flag's value (given or default); the CLI itself uses
    :func:`gnn.training.run_config.run_config` with the flags given only."""
    return TrainConfig(**flag_fields(vars(args)))


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from gnn.data import DatasetFormatError, DatasetNotFoundError, DownloadError
    from gnn.distributed.runtime import DistributedError, launched_world_size
    from gnn.model_io import save_model
    from gnn.training.run_config import run_config

    # Under torchrun (WORLD_SIZE > 1) the graph is partitioned over the processes
    # (docs/DISTRIBUTED.md); only rank 0 prints and writes files.
    refusals = (DatasetFormatError, DatasetNotFoundError, DownloadError, ValueError,
                FileNotFoundError)
    if args.model in BASELINES:
        from gnn.cli import closed_form

        if launched_world_size() > 1:
            return refuse(f"{args.model} is fitted in closed form in one process; run it "
                          f"without torchrun")
        return closed_form.run(args, given_fields(argv), refuse)
    try:
        distributed = launched_world_size() > 1
        if args.fit_options is not None:
            return refuse(f"--fit-options applies to the closed-form models "
                          f"({', '.join(sorted(BASELINES))}), not to {args.model}")
        config = run_config(given_fields(argv), config_file=args.config, distributed=distributed)
    except refusals as exc:
        return refuse(exc)
    try:
        if distributed:
            from gnn.distributed import DistributedTrainer

            trainer = DistributedTrainer(config)
        else:
            trainer = Trainer(config)
    except refusals as exc:
        # The message names the file and line, the device, the checkpoint, or what to download
        # and where: no traceback for a user's mistake.
        return refuse(exc)
    except DistributedError as exc:  # the ranks disagree, or one of them died
        print(f"error: {exc}", file=sys.stderr)
        return 1
    main_rank = getattr(trainer, "rank", 0) == 0
    say = print if main_rank else (lambda *a, **k: None)
    ds = trainer.dataset
    procs = f" x {trainer.world_size} processes" if distributed else ""
    n = torch.get_num_threads()
    threads = f", {n} thread{'s' * (n != 1)}" if trainer.device.type == "cpu" else ""
    say(f"{ds.name}: {ds.n_users} users, {ds.n_items} items, {trainer.n_train} training pairs; "
        f"{config.model} on {trainer.device}{procs}{threads}")
    say(getattr(trainer.model, "_template", [trainer.model])[0])  # a ShardedModel's template
    try:
        if config.resume:
            trainer.resume()
        summary = trainer.fit()
    except refusals as exc:  # raised by resume() before any training
        return refuse(exc)
    except DistributedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    summary.setdefault("world_size", 1)
    if summary["best_epoch"] is None:
        say(f"no epoch was trained (epochs={config.epochs}), so nothing was evaluated")
    else:
        shown = "  ".join(f"{k}={summary[k]:.4f}" for k in
                          ("recall@20", "precision@20", "ndcg@20", "hit@20")
                          if summary.get(k) is not None)
        say(f"test at epoch {summary['best_epoch']} ({summary['protocol']} protocol): {shown}  "
            f"[{summary['sec_per_epoch'] or 0:.2f} s/epoch, {summary['epochs']} epochs]")
    if config.json and main_rank:
        write_json(summary, config.json)
    if config.save_model:
        if distributed:
            trainer.save_model(config.save_model)
        else:
            save_model(trainer.model, config.save_model, dataset=ds)
        say(f"model saved to {config.save_model}")
    if distributed:
        trainer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
