"""What every recommender here shares: the graph it propagates over, scoring and top-K.

A model is built on one training :class:`~gnn.graph.Adjacency`. The adjacency is not a
parameter: it stays out of ``state_dict`` (weights save and load without it) and follows the
model to whichever device its weights are on, the first time it is needed there.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import nn

from gnn.graph import Adjacency


class GraphRecommender(nn.Module):
    """Base class: subclasses implement :meth:`propagate`, :meth:`readout`, ``reset_parameters``."""

    def __init__(self, adj: Adjacency):
        super().__init__()
        if not isinstance(adj, Adjacency):
            raise TypeError(f"{type(self).__name__}(): adj must be a gnn.graph.Adjacency "
                            f"(see gnn.graph.build_adjacency), but got {type(adj).__name__}")
        self.n_users = adj.n_users
        self.n_items = adj.n_items
        self._adj = adj
        self._train_items = None  # (indptr, indices) of each user's training items, cached

    # -- the graph -------------------------------------------------------------------------
    @property
    def adj(self) -> Adjacency:
        """The training adjacency, on the same device as the weights."""
        device = next(self.parameters()).device
        if self._adj.device != device:
            self._adj = self._adj.to(device)
            self._train_items = None
        return self._adj

    def train_items(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Each user's training items as CSR ``(indptr, indices)``, read off the adjacency.

        A user's row of ``Â`` holds its items as columns ``n_users + j`` (and, with self loops,
        its own diagonal entry, which is dropped here).
        """
        adj = self.adj
        if self._train_items is None:
            rowptr = adj.rowptr[: self.n_users + 1]
            col = adj.col[: int(rowptr[-1])].long()
            is_item = col >= self.n_users
            row_of_entry = torch.repeat_interleave(
                torch.arange(self.n_users, device=col.device), torch.diff(rowptr))
            counts = torch.bincount(row_of_entry[is_item], minlength=self.n_users)
            indptr = torch.zeros(self.n_users + 1, dtype=torch.long, device=col.device)
            indptr[1:] = torch.cumsum(counts, 0)
            self._train_items = (indptr, col[is_item] - self.n_users)
        return self._train_items

    # -- embeddings ------------------------------------------------------------------------
    def _create_embeddings(self, dim: int) -> None:
        """The layer-0 tables ``E^0``: one row per user and one per item."""
        self.user_embedding = nn.Embedding(self.n_users, dim)
        self.item_embedding = nn.Embedding(self.n_items, dim)

    def _init_embeddings_normal(self, std: float) -> None:
        nn.init.normal_(self.user_embedding.weight, std=std)
        nn.init.normal_(self.item_embedding.weight, std=std)

    def node_embeddings(self) -> torch.Tensor:
        """``E^0`` of all nodes in graph order: users, then items."""
        return torch.cat([self.user_embedding.weight, self.item_embedding.weight])

    def propagate(self, adj: Adjacency) -> List[torch.Tensor]:
        """Node embeddings of every layer (users first, then items), ``E^0`` first."""
        raise NotImplementedError

    def readout(self, layers: List[torch.Tensor], rows: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Final embeddings ``e*`` of the node ``rows`` (all nodes when None) from the layers."""
        raise NotImplementedError

    def forward(self, adj: Optional[Adjacency] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Final ``(user_emb, item_emb)`` after one full-graph propagation.

        ``adj`` overrides the training graph (e.g. an edge-dropped copy during training).
        """
        final = self.readout(self.propagate(self.adj if adj is None else adj))
        return final[: self.n_users], final[self.n_users:]

    def batch_embeddings(self, users, pos_items, neg_items, adj: Optional[Adjacency] = None):
        """Final embeddings of a training batch's users, positives and negatives.

        One full propagation, then the read-out (normalise, concatenate, average) only for
        the rows the batch uses: cheaper than :meth:`forward` followed by indexing, forward
        and backward, since the read-out of the other nodes is never computed.
        """
        layers = self.propagate(self.adj if adj is None else adj)
        rows = torch.cat([users, pos_items + self.n_users, neg_items + self.n_users])
        return self.readout(layers, rows).split([users.numel(), pos_items.numel(), neg_items.numel()])

    @torch.no_grad()
    def embeddings(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Final embeddings for inference: eval mode (no dropout), no autograd graph."""
        was_training = self.training
        self.eval()
        try:
            users, items = self.forward()
            return users.detach(), items.detach()  # MF returns its weights themselves
        finally:
            self.train(was_training)

    def initial_embeddings(self, users: torch.Tensor, items: torch.Tensor):
        """Layer-0 embeddings of a batch: what the BPR regulariser penalises."""
        return self.user_embedding.weight[users], self.item_embedding.weight[items]

    # -- scoring ---------------------------------------------------------------------------
    @torch.no_grad()
    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``ŷ_ui = ⟨e*_u, e*_i⟩`` for paired 1-D tensors of user and item ids."""
        user_emb, item_emb = self.embeddings()
        users, items = self._ids(users, "users", self.n_users), self._ids(items, "items", self.n_items)
        return (user_emb[users] * item_emb[items]).sum(-1)

    @torch.no_grad()
    def recommend(self, users, k: int = 10, return_scores: bool = False):
        """Top-``k`` items for each user, excluding the user's training items.

        Returns a ``(len(users), k)`` LongTensor of item ids (and their scores when
        ``return_scores``); slots beyond the number of unseen items hold -1 / -inf.
        """
        if k < 1:
            raise ValueError(f"recommend(): k must be >= 1, but got {k}")
        users = self._ids(users, "users", self.n_users)
        user_emb, item_emb = self.embeddings()
        scores = user_emb[users] @ item_emb.T
        indptr, indices = self.train_items()
        starts, ends = indptr[users], indptr[users + 1]
        counts = ends - starts
        row = torch.repeat_interleave(torch.arange(users.numel(), device=scores.device), counts)
        offset = torch.arange(int(counts.sum()), device=scores.device) - \
            torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        scores[row, indices[torch.repeat_interleave(starts, counts) + offset]] = float("-inf")
        top_scores, top_items = torch.topk(scores, min(k, self.n_items), dim=1)
        top_items[torch.isinf(top_scores)] = -1
        if k > self.n_items:  # pad so the output always has k columns
            pad = k - self.n_items
            top_items = torch.nn.functional.pad(top_items, (0, pad), value=-1)
            top_scores = torch.nn.functional.pad(top_scores, (0, pad), value=float("-inf"))
        return (top_items, top_scores) if return_scores else top_items

    def _ids(self, ids, name: str, n: int) -> torch.Tensor:
        ids = torch.as_tensor(ids, device=self.adj.device).long().reshape(-1)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n):
            raise ValueError(f"{type(self).__name__}: {name} must be ids in [0, {n}), but got "
                             f"range [{int(ids.min())}, {int(ids.max())}]")
        return ids

    def extra_repr(self) -> str:
        return f"n_users={self.n_users}, n_items={self.n_items}"
