"""Top-K recommendations from a training checkpoint: ``python -m gnn.recommend``.

    python -m gnn.recommend --checkpoint run.pt --user 1 -k 10

``--user`` is the user's id as it appears in the dataset (MovieLens ``userId``); items the
user interacted with in training are never recommended. MovieLens titles are shown when the
checkpoint carries them. The best-validation weights are used when the run kept them.
"""
from __future__ import annotations

import argparse
import sys

import torch

from gnn.checkpoint import load_checkpoint
from gnn.graph import build_adjacency
from gnn.training import TrainConfig, build_model


def load_model(path):
    """``(model, data)`` rebuilt from a checkpoint: the graph from its stored training pairs."""
    state = load_checkpoint(path)
    config = TrainConfig(**{k: v for k, v in state["config"].items() if k != "resume"})
    data = state["data"]
    adj = build_adjacency(data["train_user"].numpy(), data["train_item"].numpy(),
                          data["n_users"], data["n_items"], norm=config.adjacency,
                          self_loops=config.adjacency == "row")
    model = build_model(config, adj)
    weights = state.get("best_model_state") or state["model_state"]
    model.load_state_dict(weights)
    model.eval()
    return model, data


def user_index(data, user) -> int:
    """The remapped index of the dataset's user id ``user`` (a string or an int)."""
    ids = data["user_ids"]
    if isinstance(ids, torch.Tensor):
        try:
            key = int(user)
        except ValueError:
            raise ValueError(f"unknown user {user!r}: user ids of {data['name']} are integers") from None
        hits = (ids == key).nonzero().flatten()
    else:
        hits = [i for i, x in enumerate(ids) if x == str(user)]
    if len(hits) == 0:
        raise ValueError(f"unknown user {user!r}: not among the {data['n_users']} users of {data['name']}")
    return int(hits[0])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m gnn.recommend", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--user", required=True, help="the user's original id in the dataset")
    p.add_argument("-k", "--k", type=int, default=10)
    args = p.parse_args(argv)
    try:
        model, data = load_model(args.checkpoint)
        u = user_index(data, args.user)
        items, scores = model.recommend(torch.tensor([u]), args.k, return_scores=True)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    titles, item_ids = data.get("item_titles"), data["item_ids"]
    print(f"top {args.k} for user {args.user} ({data['name']}):")
    for rank, (item, score) in enumerate(zip(items[0].tolist(), scores[0].tolist()), 1):
        if item < 0:
            break
        original = item_ids[item].item() if isinstance(item_ids, torch.Tensor) else item_ids[item]
        title = f"  {titles[item]}" if titles else ""
        print(f"{rank:3d}. item {original}{title}  (score {score:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
