"""Top-K recommendations from a saved model or training checkpoint: ``python -m gnn.recommend``.

    python -m gnn.recommend --checkpoint run.pt --user 1 -k 10 [--json]

``--checkpoint`` is a file written by ``gnn.train --checkpoint`` / ``--save-model`` or by
:func:`gnn.save_model` with its dataset. ``--user`` is the user's id as it appears in the
dataset (MovieLens ``userId``, or a text id such as ``user_0007``), and items are printed with
the dataset's own ids. Items the user interacted with anywhere in the dataset (training,
validation or test ratings) are never recommended; MovieLens titles are shown when the file
carries them. A checkpoint gives the best validation epoch's weights when the run kept them.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch


def recommendations(model, user, k: int) -> list[dict]:
    """``[{rank, item, title, score}]`` for the dataset's user id ``user`` (item: original id)."""
    catalog = model.catalog
    if catalog is None:
        raise ValueError("the model was saved without its dataset (ids, titles, seen items): "
                         "save it with gnn.save_model(model, path, dataset=ds)")
    u = catalog.user_index_of(user)
    items, scores = model.recommend(torch.tensor([u]), k, exclude=catalog.seen, return_scores=True)
    out = []
    for rank, (item, score) in enumerate(zip(items[0].tolist(), scores[0].tolist()), 1):
        if item < 0:
            break
        original = catalog.item_ids[item]
        out.append({"rank": rank, "item": original.item() if hasattr(original, "item") else original,
                    "title": catalog.item_titles[item] if catalog.item_titles else None,
                    "score": float(score)})
    return out


def main(argv=None) -> int:
    from gnn.model_io import load_model

    p = argparse.ArgumentParser(prog="python -m gnn.recommend", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a saved model or training checkpoint")
    p.add_argument("--user", required=True,
                   help="the user's original id in the dataset (a number or a text id)")
    p.add_argument("-k", "--k", type=int, default=10)
    p.add_argument("--json", action="store_true",
                   help="print JSON: original item ids, titles and scores")
    args = p.parse_args(argv)
    try:
        model = load_model(args.checkpoint)
        rows = recommendations(model, args.user, args.k)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"user": args.user, "dataset": model.catalog.name, "k": args.k,
                          "items": rows}, indent=2))
        return 0
    print(f"top {args.k} for user {args.user} ({model.catalog.name}):")
    for row in rows:
        title = f"  {row['title']}" if row["title"] else ""
        print(f"{row['rank']:3d}. item {row['item']}{title}  (score {row['score']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
