"""Reproduce a paper run from a versioned config: ``python -m gnn.reproduce CONFIG [overrides]``.

Examples::

    python -m gnn.reproduce configs/gowalla/lightgcn.json                # the paper schedule
    python -m gnn.reproduce configs/gowalla/ngcf.json --epochs 2 --device cpu   # a short probe
    python -m gnn.reproduce configs/gowalla/itemknn.json                 # CPU, under a minute

The paper protocol (NGCF, LightGCN): train on ``train.txt``, no validation split, a fixed number
of epochs, full-ranking evaluation on ``test.txt`` with each user's training items excluded every
``eval_every`` epochs (recall@20 and NDCG@20 with IDCG over ``min(20, |T_u|)``), and the metrics
of the last epoch reported. The config schema is in :mod:`gnn.reproduction.config`, the outputs
in :mod:`gnn.reproduction.runner`, and docs/REPRODUCE.md has every config and result.
"""
from __future__ import annotations

import argparse
import sys

from gnn.reproduction.config import ConfigError
from gnn.reproduction.runner import run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gnn.reproduce", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="a reproduction config, e.g. configs/gowalla/lightgcn.json")
    p.add_argument("--epochs", type=int, default=None,
                   help="override the config's epochs (a short probe: output named -<N>ep)")
    p.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    p.add_argument("--data-root", default=None,
                   help="folder with train.txt/test.txt, or holding <dataset>/ "
                        "(default: $GNN_DATA, else ~/.cache/gnn)")
    p.add_argument("--out", default="results/reproduce", help="output folder (default %(default)s)")
    p.add_argument("--eval-every", type=int, default=None, help="override the config's eval_every")
    p.add_argument("--seed", type=int, default=None, help="override the config's seed")
    p.add_argument("--progress", action="store_true", help="show a progress bar per epoch")
    p.add_argument("--probe-batches", type=int, default=None, metavar="N",
                   help="only time N training steps and one evaluation, extrapolate s/epoch "
                        "(output <name>-<device>-probe.json)")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        run(args.config, epochs=args.epochs, device=args.device, data_root=args.data_root,
            out=args.out, eval_every=args.eval_every, seed=args.seed, progress=args.progress,
            probe_batches=args.probe_batches)
    except (ConfigError, FileNotFoundError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
