"""Train a recommender from the command line: ``python -m gnn.train`` (or ``gnn-train``).

Examples::

    python -m gnn.train --model ngcf --dataset ml-latest-small
    python -m gnn.train --model lightgcn --dataset path/to/gowalla --epochs 1000 --eval-every 20
    python -m gnn.train --model mf --dataset ratings.csv --split temporal --json run.json

``--dataset`` takes a MovieLens release name (downloaded into ``--data-root`` / ``$GNN_DATA``
when absent), ``gowalla`` / ``yelp2018`` / ``amazon-book``, or a path: a folder with
``train.txt`` / ``test.txt`` (paper protocol: no validation split, metrics of the last epoch),
a MovieLens folder, or a delimited ``user,item[,rating,timestamp]`` file.
"""
from __future__ import annotations

import argparse
import sys

from gnn.models import MODELS
from gnn.training import TrainConfig, Trainer, write_json
from gnn.training.config import MODEL_OPTIONS

DEFAULTS = TrainConfig()


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
    p = argparse.ArgumentParser(prog="python -m gnn.train", description=__doc__.split("\n\n")[0],
                                formatter_class=_HelpFormatter)
    a = p.add_argument
    a("--model", choices=sorted(MODELS), default=DEFAULTS.model,
      help="the model (gnn.register_model adds your own)")
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
    a("--adjacency", choices=["sym", "row"], default=DEFAULTS.adjacency,
      help="sym: D^-1/2 A D^-1/2; row: D^-1 A (for NGCF D^-1 (A+I), as its official code)")
    a("--seed", type=int, default=DEFAULTS.seed, help="seed of the weights, samples and dropout")
    a("--device", default=DEFAULTS.device, help="auto, cpu or cuda")
    a("--compile", action="store_true",
      help="run each training step as one torch.compile graph (on CUDA captured as a CUDA graph)")
    a("--keep-freed-memory", action="store_true",
      help="CPU: let glibc keep freed memory in the process for reuse (mallopt), which saves "
           "page faults on large graphs; a process-wide setting (gnn/training/allocator.py)")
    a("--eval-every", type=int, default=DEFAULTS.eval_every, help="evaluate every N epochs")
    a("--patience", type=int, default=DEFAULTS.patience,
      help="stop after this many evaluations without a better validation recall@20")
    a("--k", type=int, nargs="+", default=list(DEFAULTS.ks), help="cut-offs K (20 is always added)")
    a("--eval-chunk", type=int, default=DEFAULTS.eval_chunk, help="users scored at a time")
    a("--checkpoint", default=None, help="write a checkpoint here after every epoch")
    a("--resume", action="store_true", help="continue the run saved in --checkpoint")
    a("--json", default=None, help="write a summary of the run here")
    a("--save-model", default=None,
      help="write the trained model (reported weights, ids, titles) here for gnn.recommend")
    a("--no-progress", action="store_true", help="no progress bar")
    a("--skip-bad-lines", action="store_true",
      help="skip malformed lines of the dataset's file and report how many and which, instead "
           "of stopping at the first (MovieLens, .inter and delimited files)")
    return p


def config_from_args(args) -> TrainConfig:
    return TrainConfig(
        model=args.model, dataset=args.dataset, data_root=args.data_root, split=args.split,
        min_rating=args.min_rating, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        reg=args.reg, reg_on=args.reg_on, sampling=args.sampling, dim=args.dim,
        negatives=args.negatives, loss=args.loss, ccl_margin=args.ccl_margin,
        ccl_negative_weight=args.ccl_negative_weight,
        **{field: getattr(args, field) for field in MODEL_OPTIONS},
        adjacency=args.adjacency, seed=args.seed, device=args.device, compile=args.compile,
        keep_freed_memory=args.keep_freed_memory, eval_every=args.eval_every,
        patience=args.patience, ks=args.k, eval_chunk=args.eval_chunk,
        checkpoint=args.checkpoint, resume=args.resume, json=args.json,
        progress=not args.no_progress)


def _skipping_bad_lines(args, config):
    """--skip-bad-lines: the dataset loaded with on_bad_line="skip" (gnn.data logs what was
    skipped), else None: the Trainer loads it as usual."""
    if not args.skip_bad_lines:
        return None
    from gnn.data import load_dataset
    from gnn.training.config import resolve_split

    return load_dataset(config.dataset, config.data_root, split=resolve_split(config),
                        min_rating=config.min_rating, seed=config.seed, on_bad_line="skip")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    from gnn.data import DatasetFormatError, DatasetNotFoundError, DownloadError
    from gnn.distributed.runtime import DistributedError, launched_world_size
    from gnn.model_io import save_model

    # Under torchrun (WORLD_SIZE > 1) the graph is partitioned over the processes
    # (docs/DISTRIBUTED.md); only rank 0 prints and writes files.
    distributed = launched_world_size() > 1
    try:
        if distributed:
            from gnn.distributed import DistributedTrainer

            trainer = DistributedTrainer(config, dataset=_skipping_bad_lines(args, config))
        else:
            trainer = Trainer(config, dataset=_skipping_bad_lines(args, config))
    except (DatasetFormatError, DatasetNotFoundError, DownloadError, ValueError,
            DistributedError) as exc:
        # The message names the file and line, the device, or what to download and where:
        # no traceback for a user's mistake.
        print(f"error: {exc}", file=sys.stderr)
        return 2
    main_rank = getattr(trainer, "rank", 0) == 0
    say = print if main_rank else (lambda *a, **k: None)
    ds = trainer.dataset
    procs = f" x {trainer.world_size} processes" if distributed else ""
    say(f"{ds.name}: {ds.n_users} users, {ds.n_items} items, {trainer.n_train} training pairs; "
        f"{config.model} on {trainer.device}{procs}")
    say(trainer.model)
    try:
        summary = trainer.fit()
    except DistributedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    summary.setdefault("world_size", 1)
    shown = "  ".join(f"{k}={summary[k]:.4f}" for k in ("recall@20", "precision@20", "ndcg@20", "hit@20")
                      if summary.get(k) is not None)
    say(f"test at epoch {summary['best_epoch']} ({summary['protocol']} protocol): {shown}  "
        f"[{summary['sec_per_epoch'] or 0:.2f} s/epoch, {summary['epochs']} epochs]")
    if config.json and main_rank:
        write_json(summary, config.json)
    if args.save_model:
        if distributed:
            trainer.save_model(args.save_model)
        else:
            save_model(trainer.model, args.save_model, dataset=ds)
        say(f"model saved to {args.save_model}")
    if distributed:
        trainer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
