"""Export a saved model's embeddings for an inner-product nearest-neighbour index:
``python -m gnn.export``.

    python -m gnn.export MODEL_FILE --out DIR [--verify 100]

Writes into DIR:

* ``user_embeddings.npy``, ``item_embeddings.npy``: float32 ``(n_users, d)`` and ``(n_items, d)``,
  the final inference embeddings: the model's score of (u, i) is their inner product, so a
  maximum-inner-product index over the items answers ``recommend``;
* ``user_ids.npy``, ``item_ids.npy``: the dataset's own id of each row (numbers or text; no
  pickle needed to read them);
* ``seen_indptr.npy``, ``seen_indices.npy``: each user's items in any split, as CSR over the
  rows (what ``recommend`` excludes for people), when the file carries its dataset;
* ``export.json``: what the files are (model, dataset, sizes, score = inner product).

``--verify N`` (default 100) checks, for N users spread over the id range, that an exact
inner-product search over the exported arrays returns the same top-10 as the model's own
``recommend`` (ties: lower item id first in both), and fails otherwise.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

K_VERIFY = 10


def export(model, out: Path) -> dict:
    """Write the arrays (module docstring) of a loaded model into ``out``; return export.json."""
    if not hasattr(model, "embeddings"):  # closed-form models score without embeddings
        raise ValueError(f"{type(model).__name__} scores without user and item embeddings, so "
                         f"an inner-product index cannot answer it; export works for "
                         f"embedding models (NGCF, LightGCN, MF and their subclasses)")
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    users, items = (t.detach().float().cpu().numpy() for t in model.embeddings())
    np.save(out / "user_embeddings.npy", users)
    np.save(out / "item_embeddings.npy", items)
    catalog = getattr(model, "catalog", None)
    ids = {"user_ids.npy": np.arange(users.shape[0]), "item_ids.npy": np.arange(items.shape[0])}
    if catalog is not None:
        ids = {"user_ids.npy": catalog.user_ids, "item_ids.npy": catalog.item_ids}
        np.save(out / "seen_indptr.npy", catalog.seen.indptr)
        np.save(out / "seen_indices.npy", catalog.seen.indices)
    for name, values in ids.items():
        values = np.asarray(values)
        np.save(out / name, values.astype(str) if values.dtype == object else values)
    meta = {"model": type(model).__name__, "dataset": catalog.name if catalog else None,
            "n_users": int(users.shape[0]), "n_items": int(items.shape[0]),
            "dim": int(users.shape[1]), "score": "inner product of user and item embeddings",
            "files": sorted(p.name for p in out.glob("*.npy")),
            "seen": "CSR (seen_indptr, seen_indices) of each user's items in any split"
                    if catalog is not None else None}
    (out / "export.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def exact_top_k(user_emb: np.ndarray, item_emb: np.ndarray, users, k: int, exclude=None):
    """Top-k items by inner product (float32 as exported, ties: lower id first), a flat
    index's answer; ``exclude``: (indptr, indices) of items never returned."""
    scores = torch.from_numpy(user_emb[users]) @ torch.from_numpy(item_emb).T
    if exclude is not None:
        indptr, indices = exclude
        for row, u in enumerate(users):
            scores[row, torch.as_tensor(np.array(indices[indptr[u]:indptr[u + 1]]))] = float("-inf")
    return torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k].numpy()


def verify(model, out: Path, n_users: int) -> int:
    """How many of ``n_users`` users get the same top-10 from the exported arrays as from
    ``model.recommend`` (excluding the training items in both)."""
    user_emb = np.load(out / "user_embeddings.npy")
    item_emb = np.load(out / "item_embeddings.npy")
    n = user_emb.shape[0]
    users = np.unique(np.linspace(0, n - 1, min(n_users, n)).astype(np.int64))
    train = model.adj.interactions
    k = min(K_VERIFY, item_emb.shape[0])
    want = model.recommend(torch.from_numpy(users), k=k).numpy()
    got = exact_top_k(user_emb, item_emb, users, k,
                      exclude=(train.indptr, train.indices) if train is not None else None)
    valid = want >= 0
    return int(sum(np.array_equal(g[v], w[v]) for g, w, v in zip(got, want, valid)))


def main(argv=None) -> int:
    from gnn.model_io import load_model

    p = argparse.ArgumentParser(prog="python -m gnn.export", description=__doc__.split("\n\n")[0])
    p.add_argument("model_file", help="a model saved by gnn.save_model / gnn.train --save-model "
                                      "(or a training checkpoint)")
    p.add_argument("--out", required=True, help="folder to write the arrays into")
    p.add_argument("--verify", type=int, default=100, metavar="N",
                   help="check the exported arrays' top-10 against recommend() for N users "
                        "(default 100; 0 skips the check)")
    args = p.parse_args(argv)
    try:
        model = load_model(args.model_file)
        meta = export(model, Path(args.out))
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {meta['n_users']} user and {meta['n_items']} item embeddings (d = "
          f"{meta['dim']}) to {args.out}")
    if args.verify > 0:
        checked = min(args.verify, meta["n_users"])
        same = verify(model, Path(args.out), args.verify)
        if same != checked:
            print(f"error: the exported arrays' top-{K_VERIFY} differs from recommend() for "
                  f"{checked - same} of {checked} users", file=sys.stderr)
            return 1
        print(f"verified: exact inner-product top-{K_VERIFY} equals recommend() for {checked} "
              f"users")
    return 0
