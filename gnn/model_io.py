"""Save a trained model with what it needs to recommend, and load it back.

A model file is a plain dict read with ``torch.load(weights_only=True)`` (it cannot run code):

* ``class`` (its registered name: :func:`gnn.register_model`), ``init_args``, ``state_dict``:
  the model itself;
* ``adjacency``: its ``norm`` and ``self_loops``, and ``train``: the training interactions it
  is rebuilt from (CSR);
* ``catalog`` (when saved with a dataset): the dataset's name, original user / item ids, titles,
  and ``seen``, every interaction of every split, which recommendations to people exclude.

A training checkpoint (:class:`gnn.Trainer`) embeds the same dict, so :func:`load_model` reads
either; from a checkpoint it loads the best validation weights when the run kept them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from gnn.adjacency import build_adjacency
from gnn.data import UserItemCSR
from gnn.data.dataset import _IdMaps
from gnn.models import BASELINES, get_model, model_name
from gnn.checkpoint import load_checkpoint, save_checkpoint

MODEL_FORMAT = "gnn-model-v1"


@dataclass(repr=False)
class Catalog(_IdMaps):
    """What a saved model's ids mean: ``user_ids[u]`` / ``item_ids[i]`` are the dataset's own
    ids of user ``u`` and item ``i``; ``seen`` holds every interaction of the dataset."""

    name: str
    user_ids: np.ndarray
    item_ids: np.ndarray
    item_titles: Optional[list]
    seen: UserItemCSR

    def user_index_of(self, original) -> int:
        """The model's index of the dataset's user id ``original`` (str or int); ValueError if unknown."""
        key = original
        if np.issubdtype(np.asarray(self.user_ids).dtype, np.integer):
            try:
                key = int(original)
            except ValueError:
                raise ValueError(f"unknown user {original!r}: user ids of {self.name} are integers") from None
        else:
            key = str(original)
        index = int(self.user_index([key], missing="ignore")[0])
        if index < 0:
            raise ValueError(f"unknown user {original!r}: not among the {len(self.user_ids)} "
                             f"users of {self.name}")
        return index


def model_payload(model, dataset=None) -> dict:
    """The dict :func:`save_model` writes (also embedded in training checkpoints).

    A closed-form model (registered with ``kind="closed-form"``: ItemKNN, the graph filters)
    is saved as its hyperparameters and training interactions, and fitted again on load (its
    fit is deterministic: seeded), which keeps the file small."""
    name = model_name(model)
    if name in BASELINES:
        if getattr(model, "train", None) is None:
            raise ValueError(f"save_model(): fit the {name} model before saving it")
        payload = {"format": MODEL_FORMAT, "class": name, "kind": "closed-form",
                   "init_args": model.hyperparameters(), "train": model.train.state_dict(),
                   "catalog": None}
        n_users, n_items = model.train.shape
    else:
        adj = model.adj
        if adj.norm not in ("sym", "row") or adj.interactions is None:
            raise ValueError("save_model(): the model's adjacency must come from build_adjacency "
                             f"(norm 'sym' or 'row' with its interactions), but got "
                             f"norm={adj.norm!r}")
        payload = {
            "format": MODEL_FORMAT,
            "class": name,
            "init_args": dict(model.init_args),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "adjacency": {"norm": adj.norm, "self_loops": adj.self_loops},
            "train": adj.interactions.state_dict(),
            "catalog": None,
        }
        n_users, n_items = model.n_users, model.n_items
    if dataset is not None:
        if (dataset.n_users, dataset.n_items) != (n_users, n_items):
            raise ValueError(f"save_model(): dataset has {dataset.n_users} users x "
                             f"{dataset.n_items} items, the model {n_users} x {n_items}")
        payload["catalog"] = {
            "name": dataset.name,
            "user_ids": _ids_for_file(dataset.user_ids),
            "item_ids": _ids_for_file(dataset.item_ids),
            "item_titles": list(dataset.item_titles) if dataset.item_titles is not None else None,
            "seen": dataset.seen_csr.state_dict(),
        }
    return payload


def save_model(model, path, dataset=None) -> None:
    """Write ``model`` (and, with ``dataset``, its ids, titles and every seen interaction)
    to ``path`` atomically."""
    save_checkpoint(model_payload(model, dataset), path)


def model_from_payload(payload: dict, path="model", state_dict=None):
    """Rebuild the model of a :func:`model_payload` dict (``state_dict`` overrides its weights)."""
    if payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: not a gnn model (expected format {MODEL_FORMAT!r})")
    kind = payload.get("kind", "bpr")
    try:
        cls = get_model(payload["class"], kind)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    train = UserItemCSR.from_state_dict(payload["train"], name=f"{path}: train")
    if kind == "closed-form":
        model = cls(**payload["init_args"]).fit(train)
    else:
        adj = build_adjacency(train, **payload["adjacency"])
        model = cls(adj, **payload["init_args"])
        model.load_state_dict(state_dict if state_dict is not None else payload["state_dict"])
        model.eval()
    cat = payload.get("catalog")
    model.catalog = None if cat is None else Catalog(
        name=cat["name"], user_ids=_ids_from_file(cat["user_ids"]),
        item_ids=_ids_from_file(cat["item_ids"]), item_titles=cat["item_titles"],
        seen=UserItemCSR.from_state_dict(cat["seen"], name=f"{path}: seen"))
    return model


def load_model(path, device="cpu"):
    """The model saved by :func:`save_model` (or a training checkpoint's best weights), in eval
    mode on ``device``; ``model.catalog`` is its :class:`Catalog` (None if saved without one)."""
    state = load_checkpoint(path)
    if state.get("format") == MODEL_FORMAT:
        model = model_from_payload(state, path)
    else:  # a training checkpoint
        model = model_from_payload(state["model"], path, state_dict=state.get("best_model_state"))
    return model.to(device) if hasattr(model, "to") else model  # closed-form: on the CPU


def _ids_for_file(ids):
    ids = np.asarray(ids)
    if np.issubdtype(ids.dtype, np.integer):
        return torch.from_numpy(ids.astype(np.int64))
    return [str(x) for x in ids.tolist()]


def _ids_from_file(ids) -> np.ndarray:
    return ids.numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids, dtype=object)
