"""NGCF: Neural Graph Collaborative Filtering (Wang et al., SIGIR 2019, https://arxiv.org/abs/1905.08108)."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import nn

from gnn.adjacency import Adjacency
from gnn.kernels import ngcf_dense_step, ngcf_layer
from gnn.models.base import GraphRecommender, spmm


def message_dropout_mask(like: torch.Tensor, p: float,
                         rows: Union[None, slice, torch.Tensor] = None) -> torch.Tensor:
    """Inverted-dropout mask for ``like``: 0 with probability ``p``, else ``1 / P(keep)``.

    Each 64-bit draw gives four 16-bit uniforms (a quarter of the draws of ``F.dropout``), so
    ``p`` is rounded to a multiple of ``2^-16`` (0.1 becomes 0.100006) and kept entries are
    scaled by the exact ``1 / P(keep)``, which keeps the layer unbiased. Reproducible under
    ``torch.manual_seed``. ``rows`` (a slice or index tensor) returns only those rows of the
    whole mask: the draws are the same, and only those rows become floats.
    """
    dropped = round(p * 65536)  # entries dropped out of every 2^16
    # randint over the int64 range draws the same stream as Tensor.random_ and, unlike it,
    # is traced by torch.compile.
    words = torch.randint(-2**63, 2**63 - 1, ((like.numel() + 3) // 4,), dtype=torch.int64,
                          device=like.device)
    bits = words.view(torch.int16)[: like.numel()].view(like.shape)
    if rows is not None:
        bits = bits[rows]
    # keep where bits >= dropped - 32768 (int16 is uniform on [-32768, 32767]), written as
    # 1.0 / 0.0 straight into the mask, then scaled in place (on the CPU much faster than a
    # bool mask times a scale, or a bool mask converted).
    mask = torch.empty(bits.shape, dtype=like.dtype, device=like.device)
    torch.ge(bits, dropped - 32768, out=mask)
    return mask.mul_(65536.0 / (65536 - dropped))


class NGCF(GraphRecommender):
    r"""NGCF with each layer computed by :func:`gnn.kernels.ngcf_layer` (docs/DESIGN.md §2).

    .. math::
        E^{l} = \mathrm{LeakyReLU}\big((\hat A + I) E^{l-1} W_1^l
                + (\hat A E^{l-1} \odot E^{l-1}) W_2^l + b^l\big)

    followed by message dropout; the final representation concatenates
    :math:`E^0 \,\|\, \mathrm{norm}(E^1) \,\|\, \dots \,\|\, \mathrm{norm}(E^L)` (row-wise L2
    normalisation), while each layer consumes the un-normalised output of the previous one.

    The layer given ``S = Â E`` is :meth:`layer_step` (:func:`gnn.kernels.ngcf_dense_step`, then
    message dropout); whole layers run fused (:func:`gnn.kernels.ngcf_layer`, the same math)
    while a subclass does not override ``layer_step`` or ``node_embeddings``, and a batch's
    last layer only at its rows while it keeps all of NGCF's math (``_math_is``).

    Args:
        adj: the training adjacency. With ``build_adjacency(..., norm="sym")`` (no self-loops)
            the layer adds the ``+ I`` of the paper; an adjacency that already holds self-loops
            (``norm="row", self_loops=True``: the official code's ``D^{-1}(A + I)``) is used as is.
        embedding_dim: size of ``E^0`` (default 64).
        num_layers: number of layers (default 3), each of size ``embedding_dim``.
        layer_sizes: output size of each layer (overrides the sizes; its length must equal
            ``num_layers``).
        message_dropout: dropout on each layer's output during training (default 0.1).
        node_dropout: probability of dropping each entry of ``Â`` during training, rescaling the
            rest (the official code's "node dropout"; default 0.0).
        self_loop: add ``E^{l-1}`` to ``Â E^{l-1}`` in the ``W_1`` term. Default None: exactly when
            the adjacency has no self-loops (a self-loop is never added twice).
        negative_slope: LeakyReLU slope (default 0.2).
    """

    config_options = {"dim": "embedding_dim", "layers": "num_layers",
                      "message_dropout": "message_dropout", "node_dropout": "node_dropout"}

    def __init__(self, adj: Adjacency, embedding_dim: int = 64, num_layers: int = 3,
                 layer_sizes: Optional[Sequence[int]] = None, message_dropout: float = 0.1,
                 node_dropout: float = 0.0, self_loop: Optional[bool] = None,
                 negative_slope: float = 0.2):
        super().__init__(adj)
        self._create_embeddings(embedding_dim)  # checks embedding_dim first
        if layer_sizes is None:
            if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 0:
                raise ValueError(f"NGCF(): num_layers must be an int >= 0, but got {num_layers!r}")
            sizes = [embedding_dim] * num_layers
        else:
            sizes = [int(s) for s in layer_sizes]
            if len(sizes) != num_layers:
                raise ValueError(f"NGCF(): layer_sizes has {len(sizes)} entries but num_layers="
                                 f"{num_layers}; pass num_layers={len(sizes)}")
        if any(s < 1 for s in sizes):
            raise ValueError(f"NGCF(): layer sizes must be >= 1, but got {sizes}")
        for name, p in (("message_dropout", message_dropout), ("node_dropout", node_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"NGCF(): {name} must be in [0, 1), but got {p}")
        if self_loop is None:
            self_loop = not adj.self_loops
        elif self_loop and adj.self_loops:
            raise ValueError("NGCF(): self_loop=True adds I to an adjacency that already holds "
                             "self-loops (I would count twice); leave self_loop=None")
        self.init_args = dict(embedding_dim=embedding_dim, num_layers=len(sizes),
                              layer_sizes=list(sizes) if layer_sizes is not None else None,
                              message_dropout=message_dropout, node_dropout=node_dropout,
                              self_loop=bool(self_loop), negative_slope=negative_slope)
        self.embedding_dim, self.num_layers, self.layer_sizes = embedding_dim, len(sizes), sizes
        self.message_dropout, self.node_dropout = message_dropout, node_dropout
        self.self_loop, self.negative_slope = bool(self_loop), negative_slope
        in_sizes = [embedding_dim] + sizes[:-1]
        self.w1 = nn.ParameterList(nn.Parameter(torch.empty(i, o)) for i, o in zip(in_sizes, sizes))
        self.w2 = nn.ParameterList(nn.Parameter(torch.empty(i, o)) for i, o in zip(in_sizes, sizes))
        self.bias = nn.ParameterList(nn.Parameter(torch.empty(o)) for o in sizes)
        self.reset_parameters()
        # The fused whole layers compute NGCF's layer_step; the batch path all of NGCF's math.
        self._fused_layers = self._math_is(NGCF, ("node_embeddings", "layer_step"))
        self._batch_rows_fast = self._math_is(NGCF)

    @classmethod
    def adjacency_options(cls, config) -> dict:
        """``"row"`` is the official code's ``D^{-1}(A + I)`` (the layer then adds no identity
        of its own); with ``"sym"`` the layer adds the paper's ``+ I`` itself."""
        return {"norm": config.adjacency, "self_loops": config.adjacency == "row"}

    @property
    def output_dim(self) -> int:
        """Size of the final (concatenated) representation."""
        return self.embedding_dim + sum(self.layer_sizes)

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)
        for w1, w2, b in zip(self.w1, self.w2, self.bias):
            nn.init.xavier_uniform_(w1)
            nn.init.xavier_uniform_(w2)
            nn.init.zeros_(b)

    def layer_step(self, k, s, x, rows=None, n_nodes=None):
        """``LeakyReLU((S + [self_loop] E) W1 + (S ⊙ E) W2 + b)`` (the kernels' one dense
        step), then message dropout in training: rows ``rows`` of a mask drawn whole."""
        y = ngcf_dense_step(s, x, self.w1[k], self.w2[k], self.bias[k], self.negative_slope,
                            self.self_loop)
        return self._drop_messages(y, rows, n_nodes)

    def _drop_messages(self, y, rows=None, n_nodes=None):
        """``y`` times rows ``rows`` of the layer's message-dropout mask, drawn for all
        ``n_nodes`` rows (default ``len(y)``); ``y`` itself outside training."""
        if not (self.training and self.message_dropout > 0):
            return y
        like = y.new_empty(()).expand(y.shape[0] if n_nodes is None else n_nodes, y.shape[1])
        return y * message_dropout_mask(like, self.message_dropout, rows)

    def propagate(self, adj: Adjacency):
        if not self._fused_layers:
            return super().propagate(adj)
        return self._layers(adj)

    def _layers(self, adj: Adjacency, rows: Optional[torch.Tensor] = None):
        """``[E^0, ..., E^L]`` with fused layers; with ``rows``, the rows of every layer
        instead, ``[E^0[rows], ..., E^L[rows]]``, with ``E^L`` computed at those rows only by
        :meth:`layer_step` (the layers before it stay whole: its SpMM needs their neighbours).

        Random draws as :meth:`GraphRecommender.propagate`'s: the node-dropout mask, then one
        message-dropout mask per layer, always drawn whole. The same seed gives the same masks.
        """
        adj = self.training_adjacency(adj)
        x = self.node_embeddings()
        out = [x if rows is None else x.index_select(0, rows)]
        for k, (w1, w2, b) in enumerate(zip(self.w1, self.w2, self.bias)):
            if rows is not None and k == self.num_layers - 1:
                # out[-1] is E^{L-1}[rows], gathered once for both uses
                out.append(self.layer_step(k, spmm(adj, x).index_select(0, rows), out[-1],
                                           rows, x.shape[0]))
                break
            x = self._drop_messages(ngcf_layer(
                adj.rowptr, adj.col, adj.val, x, w1, w2, b, negative_slope=self.negative_slope,
                self_loop=self.self_loop, symmetric=adj.symmetric, transpose=adj.transpose))
            out.append(x if rows is None else x.index_select(0, rows))
        return out

    def batch_embeddings(self, users, pos_items, neg_items, adj: Optional[Adjacency] = None):
        if not self._batch_rows_fast:
            return super().batch_embeddings(users, pos_items, neg_items, adj)
        return self._batch_parts(users, pos_items, neg_items, adj)[0]

    def _batch_parts(self, users, pos_items, neg_items, adj=None):
        """(final rows, E^0 rows), each split into users, positives, negatives."""
        # A batch reads the last layer at its own rows only, so that layer is computed there
        # (its SpMM stays whole): with 3B rows of N, most of the last layer's dense work goes.
        rows = self._batch_node_rows(users, pos_items, neg_items)
        sizes = [users.numel(), pos_items.numel(), neg_items.numel()]
        if self.num_layers == 0:
            rows0 = self.node_embeddings().index_select(0, rows).split(sizes)
            return rows0, rows0
        # Each distinct row once, eagerly on the CPU (torch.unique syncs on CUDA, and its
        # data-dependent size would break a compiled graph).
        if rows.device.type == "cpu" and not torch.compiler.is_compiling():
            needed, where = torch.unique(rows, return_inverse=True)
        else:
            needed, where = rows, None
        parts = self._layers(self._check_adj(adj), needed)
        final, rows0 = self._concat(parts), parts[0]
        if where is not None:
            final, rows0 = final.index_select(0, where), rows0.index_select(0, where)
        return final.split(sizes), rows0.split(sizes)

    def _loss_rows(self, users, pos_items, neg_items):
        if not self._batch_rows_fast:
            return super()._loss_rows(users, pos_items, neg_items)
        # The E^0 rows the read-out gathered anyway: the L2 term's gradient joins the
        # read-out's instead of scattering into each table on its own.
        final, rows0 = self._batch_parts(users, pos_items, neg_items)
        return final + rows0

    def readout(self, layers, rows=None):
        """``E^0 ‖ norm(E^1) ‖ … ‖ norm(E^L)`` for the given node rows."""
        if rows is not None:
            layers = [x.index_select(0, rows) for x in layers]
        return self._concat(layers)

    @staticmethod
    def _concat(layers):
        return _NormalizedConcat.apply(*layers)


_NORM_EPS = 1e-12  # F.normalize's


class _NormalizedConcat(torch.autograd.Function):
    r"""``[x_0 | x_1 / ‖x_1‖ | ... | x_L / ‖x_L‖]`` by rows, into one tensor
    (``F.normalize``'s ``max(‖x‖, eps)``), with its backward in a few passes per part:
    ``dx = (g - y ⟨g, y⟩) / ‖x‖`` (``g / eps`` where ``‖x‖ <= eps``), ``y`` the output part.
    Composed from ``F.normalize`` and ``torch.cat``, autograd made about ten passes per part
    and a copy of the whole output's gradient.
    """

    @staticmethod
    def forward(ctx, *xs):
        norms = [torch.linalg.vector_norm(x, dim=1, keepdim=True) for x in xs[1:]]
        out = torch.cat([xs[0]] + [x / n.clamp_min(_NORM_EPS) for x, n in zip(xs[1:], norms)],
                        dim=1)
        ctx.widths = [x.shape[1] for x in xs]
        ctx.save_for_backward(out, *norms)
        return out

    @staticmethod
    def backward(ctx, grad):
        out, *norms = ctx.saved_tensors
        widths = ctx.widths
        grads, start = [grad[:, : widths[0]]], widths[0]
        for norm, w in zip(norms, widths[1:]):
            y, g = out[:, start: start + w], grad[:, start: start + w]
            dot = (g * y).sum(1, keepdim=True).masked_fill_(norm <= _NORM_EPS, 0)
            grads.append(torch.addcmul(g, y, dot, value=-1).div_(
                norm.clamp_min(_NORM_EPS)))
            start += w
        return tuple(grads)
