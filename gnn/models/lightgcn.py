"""LightGCN (He et al., SIGIR 2020, https://arxiv.org/abs/2002.02126)."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

from gnn.adjacency import Adjacency
from gnn.kernels import csr_spmm
from gnn.models.base import GraphRecommender


class _BatchRows(torch.autograd.Function):
    r"""LightGCN's batch path: rows ``rows`` of ``e* = Σ_k α_k Â^k E^0`` and of ``E^0``, with
    ``E^0 = [U; I]``; the same math as ``readout(propagate(adj), rows)`` (tests/models tie the
    two), used only while a model keeps LightGCN's math (:meth:`GraphRecommender._math_is`).

    Forward: K SpMMs; no layer is kept for the backward (the propagation is linear). Backward,
    with ``g`` the rows' gradient scattered into a zero N x d ``G`` (the only dense scatter),
    by Horner's rule: ``Y_K = α_K G``, ``Y_k = Âᵀ Y_{k+1} + α_k G``, ``dE^0 = Y_0`` (plus the
    ``E^0`` rows' own gradient). Each ``+ α_k G`` touches only the batch rows (``index_add_``),
    so the backward makes K SpMM passes and one zero fill over N x d, where autograd through
    the layer list makes a scatter, a zero fill and an accumulation per layer.
    """

    @staticmethod
    def forward(ctx, user_w, item_w, rows, rowptr, col, val, rowptr_t, col_t, val_t, alpha):
        x = torch.cat([user_w, item_w])
        rows0 = x.index_select(0, rows)
        total = rows0 * alpha[0]
        for a in alpha[1:]:
            x = csr_spmm(rowptr, col, val, x, symmetric=True)  # no autograd in here
            total.add_(x.index_select(0, rows), alpha=a)
        if rowptr_t is None:  # symmetric: Âᵀ = Â
            rowptr_t, col_t, val_t = rowptr, col, val
        ctx.save_for_backward(rows, rowptr_t, col_t, val_t)
        ctx.alpha, ctx.n_nodes, ctx.n_users = alpha, x.shape[0], user_w.shape[0]
        return total, rows0

    @staticmethod
    def backward(ctx, grad_total, grad_rows0):
        rows, rowptr_t, col_t, val_t = ctx.saved_tensors
        alpha = ctx.alpha
        scaled = {}  # α g per distinct α: index_add_ with alpha= takes a slower path on the CPU

        def add_rows(y, a):
            if a not in scaled:
                scaled[a] = grad_total * a
            y.index_add_(0, rows, scaled[a])

        y = grad_total.new_zeros((ctx.n_nodes, grad_total.shape[1]))
        add_rows(y, alpha[-1])
        for a in reversed(alpha[:-1]):
            y = csr_spmm(rowptr_t, col_t, val_t, y, symmetric=True)
            add_rows(y, a)
        if grad_rows0 is not None:
            y.index_add_(0, rows, grad_rows0)
        return (y[: ctx.n_users], y[ctx.n_users:]) + (None,) * 8


def batch_rows(model, adj: Adjacency, rows: torch.Tensor):
    """``(e*[rows], E^0[rows])`` of a LightGCN through :class:`_BatchRows`."""
    if adj.symmetric:
        t = (None, None, None)  # the same tensors twice would stop torch.compile
    else:
        rowptr_t, col_t, perm_t = adj.transpose
        t = (rowptr_t, col_t, adj.val.index_select(0, perm_t))
    return _BatchRows.apply(model.user_embedding.weight, model.item_embedding.weight, rows,
                            adj.rowptr, adj.col, adj.val, *t, model.alpha)


class LightGCN(GraphRecommender):
    r"""LightGCN: linear propagation, weighted layer sum (docs/DESIGN.md §2).

    .. math::
        E^{k+1} = \hat A E^k, \qquad e^* = \sum_{k=0}^{K} \alpha_k E^k

    The layer is :meth:`layer_step` (``E^{k+1} = S``), the sum :meth:`readout`; a subclass that
    overrides either (or ``propagate``) is trained and evaluated with its own math.

    Args:
        adj: the training adjacency (symmetric normalisation, as in the paper).
        embedding_dim: embedding size (default 64).
        num_layers: ``K``, the number of propagation steps (default 3).
        alpha: the layer weights ``α_k``: None for ``1 / (K + 1)`` each (the paper's mean), a
            number for the same weight everywhere, or ``K + 1`` numbers.
        node_dropout: probability of dropping each entry of ``Â`` during training, rescaling
            the rest (the official code's ``--dropout`` / ``keep_prob``; default 0.0).
        init_std: standard deviation of the normal initialisation of ``E^0`` (default 0.1).
    """

    config_options = {"dim": "embedding_dim", "layers": "num_layers", "node_dropout": "node_dropout"}

    def __init__(self, adj: Adjacency, embedding_dim: int = 64, num_layers: int = 3,
                 alpha: Union[None, float, Sequence[float], torch.Tensor] = None,
                 node_dropout: float = 0.0, init_std: float = 0.1):
        super().__init__(adj)
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 0:
            raise ValueError(f"LightGCN(): num_layers must be an int >= 0, but got {num_layers!r}")
        if alpha is None:
            weights = torch.full((num_layers + 1,), 1.0 / (num_layers + 1))
        else:
            weights = torch.as_tensor(alpha, dtype=torch.float64).reshape(-1)
            if weights.numel() == 1:
                weights = weights.expand(num_layers + 1)
            if weights.numel() != num_layers + 1 or not torch.isfinite(weights).all():
                raise ValueError(f"LightGCN(): alpha must be one number or num_layers + 1 = "
                                 f"{num_layers + 1} finite numbers, but got {alpha!r}")
        if not 0.0 <= node_dropout < 1.0:
            raise ValueError(f"LightGCN(): node_dropout must be in [0, 1), but got {node_dropout}")
        alpha_list = None if alpha is None else [float(a) for a in weights]
        self.init_args = dict(embedding_dim=embedding_dim, num_layers=num_layers,
                              alpha=alpha_list, node_dropout=node_dropout, init_std=init_std)
        self.node_dropout = node_dropout
        self.embedding_dim, self.num_layers, self.init_std = embedding_dim, num_layers, init_std
        self.alpha = [float(a) for a in weights]
        self._create_embeddings(embedding_dim)
        self.reset_parameters()
        # LightGCN's batch path (_BatchRows) computes LightGCN's math only.
        self._batch_rows_fast = self._math_is(LightGCN)

    def reset_parameters(self) -> None:
        self._normal_init(self.init_std)

    def layer_step(self, k, s, x, rows=None, n_nodes=None):
        """``E^{k+1} = Â E^k``: the layer is the SpMM itself."""
        return s

    def readout(self, layers, rows=None):
        """``Σ_k α_k E^k`` at ``rows``."""
        total = None
        for a, x in zip(self.alpha, layers):
            x = x if rows is None else x.index_select(0, rows)
            total = x * a if total is None else total.add(x, alpha=a)
        return total

    def _batch_parts(self, users, pos_items, neg_items, adj: Optional[Adjacency] = None):
        """(final rows, E^0 rows) of the batch through :class:`_BatchRows`, each split into
        users, positives, negatives."""
        adj = self.training_adjacency(self._check_adj(adj))
        sizes = [users.numel(), pos_items.numel(), neg_items.numel()]
        total, rows0 = batch_rows(self, adj, self._batch_node_rows(users, pos_items, neg_items))
        return total.split(sizes), rows0.split(sizes)

    def batch_embeddings(self, users, pos_items, neg_items, adj: Optional[Adjacency] = None):
        if not self._batch_rows_fast:
            return super().batch_embeddings(users, pos_items, neg_items, adj)
        return self._batch_parts(users, pos_items, neg_items, adj)[0]

    def _loss_rows(self, users, pos_items, neg_items):
        if not self._batch_rows_fast:
            return super()._loss_rows(users, pos_items, neg_items)
        final, rows0 = self._batch_parts(users, pos_items, neg_items)
        return final + rows0
