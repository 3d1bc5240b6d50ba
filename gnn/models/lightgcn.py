"""LightGCN (He et al., SIGIR 2020, https://arxiv.org/abs/2002.02126)."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

from gnn.adjacency import Adjacency
from gnn.kernels import csr_spmm
from gnn.models.base import GraphRecommender


class _BatchRows(torch.autograd.Function):
    r"""LightGCN's batch path: read-outs of ``E^k = Â^k E^0`` (``E^0 = [U; I]``) at a few rows,
    ``out_r = Σ_k w_{r,k} E^k[rows_r]`` for each read-out ``r = (w_r, rows_r)``; the same math as
    ``readout(propagate(adj), rows)`` (tests/models tie the two), used only while a model keeps
    LightGCN's propagation (:meth:`GraphRecommender._math_is`). LightGCN reads ``(α, rows)`` and
    ``((1,), rows)`` (the L2 term's ``E^0`` rows); XSimGCL a layer's rows too.

    ``perturb(k, E)``, when given, returns layer ``k + 1`` from ``S = Â E^k`` as ``S + Δ`` with
    ``Δ`` of no gradient of its own (XSimGCL's noise): the layers stay affine in ``E^0`` with the
    same linear part, so the backward is unchanged.

    Forward: K SpMMs; no layer is kept for the backward. Backward, with ``G_r`` read-out ``r``'s
    gradient scattered into a zero N x d matrix (the only dense scatter), by Horner's rule:
    ``Y_K = Σ_r w_{r,K} G_r``, ``Y_k = Âᵀ Y_{k+1} + Σ_r w_{r,k} G_r``, ``dE^0 = Y_0``. Each
    ``+ w G_r`` touches only the read-out's rows (``index_add_``), so the backward makes K SpMM
    passes and one zero fill over N x d, where autograd through the layer list makes a scatter,
    a zero fill and an accumulation per layer.
    """

    @staticmethod
    def forward(ctx, user_w, item_w, rowptr, col, val, rowptr_t, col_t, val_t, readouts, perturb):
        x = torch.cat([user_w, item_w])
        outs = [None] * len(readouts)

        def read(k, x):
            for r, (weights, rows) in enumerate(readouts):
                if k < len(weights) and (weights[k] != 0 or outs[r] is None):
                    part = x.index_select(0, rows)
                    outs[r] = part * weights[k] if outs[r] is None \
                        else outs[r].add_(part, alpha=weights[k])

        read(0, x)
        n_layers = max(len(weights) for weights, _ in readouts) - 1
        for k in range(n_layers):
            x = csr_spmm(rowptr, col, val, x, symmetric=True)  # no autograd in here
            if perturb is not None:
                x = perturb(k, x)
            read(k + 1, x)
        if rowptr_t is None:  # symmetric: Âᵀ = Â
            rowptr_t, col_t, val_t = rowptr, col, val
        ctx.save_for_backward(rowptr_t, col_t, val_t, *(rows for _, rows in readouts))
        ctx.weights = [weights for weights, _ in readouts]
        ctx.n_layers, ctx.n_nodes, ctx.n_users = n_layers, x.shape[0], user_w.shape[0]
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grads):
        rowptr_t, col_t, val_t, *rows = ctx.saved_tensors
        scaled = {}  # w g per read-out and distinct w: index_add_ with alpha= is slower on the CPU

        def add_rows(y, k):
            for r, (weights, g) in enumerate(zip(ctx.weights, grads)):
                if g is not None and k < len(weights) and weights[k] != 0:
                    if (r, weights[k]) not in scaled:
                        scaled[r, weights[k]] = g * weights[k]
                    y.index_add_(0, rows[r], scaled[r, weights[k]])

        g = next(g for g in grads if g is not None)
        y = g.new_zeros((ctx.n_nodes, g.shape[1]))
        add_rows(y, ctx.n_layers)
        for k in reversed(range(ctx.n_layers)):
            y = csr_spmm(rowptr_t, col_t, val_t, y, symmetric=True)
            add_rows(y, k)
        return (y[: ctx.n_users], y[ctx.n_users:]) + (None,) * 8


def batch_readouts(model, adj: Adjacency, readouts, perturb=None):
    """The read-outs ``[(weights, rows), ...]`` of a LightGCN-like model's layers through
    :class:`_BatchRows` (``perturb``: see there), one tensor each."""
    if adj.symmetric:
        t = (None, None, None)  # the same tensors twice would stop torch.compile
    else:
        rowptr_t, col_t, perm_t = adj.transpose
        t = (rowptr_t, col_t, adj.val.index_select(0, perm_t))
    readouts = tuple((tuple(float(w) for w in weights), rows) for weights, rows in readouts)
    return _BatchRows.apply(model.user_embedding.weight, model.item_embedding.weight,
                            adj.rowptr, adj.col, adj.val, *t, readouts, perturb)


def batch_rows(model, adj: Adjacency, rows: torch.Tensor):
    """``(e*[rows], E^0[rows])`` of a LightGCN through :class:`_BatchRows`."""
    return batch_readouts(model, adj, [(model.alpha, rows), ((1.0,), rows)])


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
