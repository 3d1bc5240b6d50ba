"""XSimGCL or UltraGCN: which of the two third objectives of issue 18 the library keeps.

    python scripts/objective_selection.py --json results/cpu/train/objective-selection.json

Both are tried briefly, hyperparameters chosen on validation recall@20 only:

* ml-latest-small, the training CLI's validation protocol (split seed 0, early stopping on
  validation, test scored once with the best validation epoch's weights), a small grid each;
* Gowalla: the seconds per training epoch of each on its published setting, on this machine
  (a few timed steps of the trainer's own epoch, extrapolated), which decides what a 60-minute
  CPU budget buys.

XSimGCL is the library's model (gnn/models/xsimgcl.py). UltraGCN (Mao et al., CIKM 2021) is
written here only, from its paper, as the prototype the comparison needs: MF embeddings trained
with the constraint loss, which weighs each positive (u, i) and each sampled negative (u, j) by
``beta_ui = (1 / d_u) sqrt((d_u + 1) / (d_i + 1))`` (the limit of infinitely many LightGCN
layers, folded into the loss) on top of plain weights w1 / w3, and the item-item term, which
pulls each user towards the top-``n`` neighbours j of its positive i under
``omega_ij = G_ij / (g_i - G_ii) sqrt(g_i / g_j)`` (``G = R^T R``, ``g`` its row sums):

    L = sum_b [ -(w1 + w2 beta_ui) log s(y_ui) - w_neg mean_k (w3 + w4 beta_uj) log s(-y_uj) ]
        - lambda_ii sum_b sum_{j in S(i)} omega_ij log s(y_uj) + gamma / 2 ||theta||^2
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from gnn import MF, TrainConfig, Trainer, load_dataset, register_model
from gnn.models import MODELS
from validation_grid import cpu_seconds, validation_run  # scripts/, beside this file


def item_neighbours(train, n: int, block: int = 2048):
    """Top-``n`` neighbours of every item under UltraGCN's omega and their weights, from
    ``G = R^T R`` computed a block of items at a time (never n_items x n_items at once)."""
    r = sp.csr_matrix((np.ones(train.nnz, np.float32), train.indices, train.indptr),
                      shape=(train.n_users, train.n_items))
    rt = r.T.tocsr()
    g = np.asarray(rt @ np.asarray(r.sum(axis=1)).ravel()).ravel()  # row sums of G
    ids = np.zeros((train.n_items, n), np.int64)
    weights = np.zeros((train.n_items, n), np.float32)
    for start in range(0, train.n_items, block):
        stop = min(start + block, train.n_items)
        rows = (rt[start:stop] @ r).toarray()  # G[start:stop], dense block
        diag = rows[np.arange(stop - start), np.arange(start, stop)].copy()
        rows[np.arange(stop - start), np.arange(start, stop)] = 0.0
        denom = np.maximum(g[start:stop] - diag, 1e-12)[:, None]
        omega = rows / denom * np.sqrt(g[start:stop, None] / np.maximum(g[None, :], 1e-12))
        top = np.argpartition(-omega, n, axis=1)[:, :n]
        ids[start:stop] = top
        weights[start:stop] = np.take_along_axis(omega, top, axis=1)
    return torch.from_numpy(ids), torch.from_numpy(weights)


class UltraGCN(MF):
    """The prototype of the module docstring (an MF whose loss is UltraGCN's)."""

    options = dict(w1=1e-7, w2=1.0, w3=1e-7, w4=1.0, negative_weight=200.0, gamma=1e-4,
                   lambda_ii=1e-3, neighbours=10, init_std=1e-3)

    def __init__(self, adj, embedding_dim: int = 64):
        o = self.options
        super().__init__(adj, embedding_dim, init_std=o["init_std"])
        self.init_args = dict(embedding_dim=embedding_dim)
        train = adj.interactions
        du = torch.from_numpy(train.degrees()).double()
        di = torch.from_numpy(np.bincount(train.indices, minlength=train.n_items)).double()
        self.beta_u = ((du + 1).sqrt() / du.clamp_min(1)).float()
        self.beta_i = (1 / (di + 1).sqrt()).float()
        self.nb_ids, self.nb_w = item_neighbours(train, int(o["neighbours"]))

    def loss(self, users, pos_items, neg_items, reg=0.0, *, reg_on="initial", check=True,
             objective=None):
        o = self.options
        u = self.user_embedding(users)
        items = self.item_embedding.weight
        neg = neg_items if neg_items.dim() == 2 else neg_items[:, None]
        pos_score = (u * items[pos_items]).sum(-1)
        neg_score = torch.bmm(items[neg], u[:, :, None]).squeeze(2)
        pos_w = o["w1"] + o["w2"] * self.beta_u[users] * self.beta_i[pos_items]
        neg_w = o["w3"] + o["w4"] * self.beta_u[users, None] * self.beta_i[neg]
        loss = (pos_w * F.softplus(-pos_score)).sum() \
            + o["negative_weight"] * (neg_w * F.softplus(neg_score)).mean(1).sum()
        nb = self.nb_ids[pos_items]
        nb_score = torch.bmm(items[nb], u[:, :, None]).squeeze(2)
        loss = loss + o["lambda_ii"] * (self.nb_w[pos_items] * F.softplus(-nb_score)).sum()
        return loss + o["gamma"] / 2 * sum(p.pow(2).sum() for p in self.parameters())


def run_validation(ds, model: str, train: dict, ultra=None) -> dict:
    if ultra is not None:
        UltraGCN.options = {**UltraGCN.options, **ultra}
    return {"model": model, "train": train, "ultragcn": ultra,
            **validation_run(ds, ds.name, dict(model=model, **train))}


def gowalla_epoch_seconds(model: str, train: dict, ultra=None, steps: int = 8) -> dict:
    """CPU seconds per epoch on Gowalla's train.txt, from ``steps`` timed steps (after two)."""
    if ultra is not None:
        UltraGCN.options = {**UltraGCN.options, **ultra}
    ds = load_dataset("gowalla", split="given")
    cfg = TrainConfig(model=model, dataset="gowalla", split="given", device="cpu",
                      progress=False, keep_freed_memory=True, **train)
    trainer = Trainer(cfg, dataset=ds, log=lambda *a: None)
    trainer.train_epoch(max_batches=2)
    cpu, wall = cpu_seconds(), time.perf_counter()
    trainer.train_epoch(max_batches=steps)
    per_step_cpu, per_step_wall = (cpu_seconds() - cpu) / steps, (time.perf_counter() - wall) / steps
    batches = -(-ds.train_csr.nnz // cfg.batch_size)
    return {"model": model, "train": train, "ultragcn": ultra, "timed_steps": steps,
            "batches_per_epoch": batches, "cpu_seconds_per_epoch": per_step_cpu * batches,
            "wall_seconds_per_epoch": per_step_wall * batches}


# The grids: each method's published setting and a few neighbours of it. XSimGCL: SELFRec's
# Yelp2018 configuration (lambda 0.2, eps 0.2, tau 0.15, 2 layers, l* = 1, batch 2048, lr 1e-3);
# UltraGCN: its ml-1m configuration (200 negatives of weight 200, lambda_ii 1e-3, gamma 1e-4,
# lr 1e-3, batch 1024) with fewer negatives for the CPU.
XSIM = [dict(cl_weight=w, cl_noise=0.2, cl_temperature=0.15) for w in (0.2, 0.05, 0.01)]
ULTRA = [dict(negative_weight=w) for w in (200.0, 50.0)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-gowalla", action="store_true")
    p.add_argument("--skip-ml-latest-small", action="store_true",
                   help="only the Gowalla epoch timings")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if "ultragcn" not in MODELS:
        register_model("ultragcn", UltraGCN)
    runs = []
    ds = None if args.skip_ml_latest_small else load_dataset("ml-latest-small", split="random",
                                                               seed=0)
    for options in XSIM if ds is not None else ():
        runs.append(run_validation(ds, "xsimgcl", dict(layers=2, cl_layer=1, **options)))
        print(json.dumps(runs[-1]), flush=True)
    for ultra in ULTRA if ds is not None else ():
        runs.append(run_validation(ds, "ultragcn", dict(batch_size=1024, negatives=64), ultra))
        print(json.dumps(runs[-1]), flush=True)
    best = {m: max((r for r in runs if r["model"] == m), key=lambda r: r["valid_recall@20"])
            for m in ("xsimgcl", "ultragcn") if runs}
    timing = []
    if not args.skip_gowalla:
        timing.append(gowalla_epoch_seconds("xsimgcl", dict(layers=2, cl_layer=1, **XSIM[0])))
        print(json.dumps(timing[-1]), flush=True)
        timing.append(gowalla_epoch_seconds(  # UltraGCN's Gowalla setting: 1500 negatives
            "ultragcn", dict(batch_size=512, negatives=1500, lr=1e-4),
            dict(w1=1e-6, w3=1e-6, negative_weight=300.0, lambda_ii=5e-4, init_std=1e-4),
            steps=4))
        print(json.dumps(timing[-1]), flush=True)
    out = {"machine": "2-core x86_64 CPU (shared), torch " + torch.__version__,
           "threads": args.threads, "ml-latest-small": runs, "best_on_validation": best,
           "gowalla_epoch_seconds": timing}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
