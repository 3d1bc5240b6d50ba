"""Matrix factorisation trained with BPR (Rendle et al., UAI 2009): the honest baseline."""
from __future__ import annotations

from typing import Optional

import torch

from gnn.adjacency import Adjacency
from gnn.models.base import GraphRecommender


class MF(GraphRecommender):
    r"""MF-BPR: :math:`\hat y_{ui} = \langle e_u, e_i \rangle` with :math:`e^* = E^0`.

    Args:
        adj: the training adjacency (used only for the training items ``recommend`` excludes).
        embedding_dim: embedding size (default 64).
        init_std: standard deviation of the normal initialisation (default 0.1).
    """

    def __init__(self, adj: Adjacency, embedding_dim: int = 64, init_std: float = 0.1):
        super().__init__(adj)
        self.init_args = dict(embedding_dim=embedding_dim, init_std=init_std)
        self.embedding_dim, self.init_std = embedding_dim, init_std
        self._create_embeddings(embedding_dim)
        self.reset_parameters()
        # Rows straight from the tables: MF's own math only (a subclass may change it).
        self._table_rows_fast = self._math_is(MF)

    def reset_parameters(self) -> None:
        self._normal_init(self.init_std)

    def readout(self, layers, rows=None):
        """``e* = E^0`` (no layers: ``propagate`` returns ``[E^0]``)."""
        return layers[0] if rows is None else layers[0].index_select(0, rows)

    def batch_embeddings(self, users, pos_items, neg_items, adj: Optional[Adjacency] = None):
        if not self._table_rows_fast:
            return super().batch_embeddings(users, pos_items, neg_items, adj)
        self._check_adj(adj)
        return self._loss_rows(users, pos_items, neg_items)[:3]

    def _loss_rows(self, users, pos_items, neg_items):
        if not self._table_rows_fast:
            return super()._loss_rows(users, pos_items, neg_items)
        # Straight from the two tables: no N x d concatenation per step, and one scatter per
        # table in the backward (the item rows of positives and negatives gathered at once).
        eu = self.user_embedding.weight.index_select(0, users)
        items = self.item_embedding.weight.index_select(0, torch.cat([pos_items, neg_items]))
        ei, ej = items.split([pos_items.numel(), neg_items.numel()])
        return eu, ei, ej, eu, ei, ej
