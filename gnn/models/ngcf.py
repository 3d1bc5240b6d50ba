"""NGCF: Neural Graph Collaborative Filtering (Wang et al., SIGIR 2019, https://arxiv.org/abs/1905.08108)."""
from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from gnn.graph import Adjacency
from gnn.kernels import ngcf_layer
from gnn.models.base import GraphRecommender


def message_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout whose mask costs a quarter of the random draws of ``F.dropout``.

    Each 64-bit draw gives four 16-bit uniforms, so ``p`` is rounded to a multiple of
    ``2^-16`` (0.1 becomes 0.100006) and the kept entries are scaled by the exact
    ``1 / P(keep)``, which keeps the layer unbiased. On the CPU this halves the time of the
    dropout, the largest single cost of an NGCF step there.
    """
    if not training or p == 0.0:
        return x
    dropped = round(p * 65536)  # entries dropped out of every 2^16
    bits = torch.empty((x.numel() + 3) // 4, dtype=torch.int64, device=x.device)
    bits = bits.random_(-2**63, 2**63 - 1).view(torch.int16)[: x.numel()].view_as(x)
    keep = bits >= dropped - 32768  # int16 is uniform on [-32768, 32767]
    return x * (keep * (65536.0 / (65536 - dropped))).to(x.dtype)


class NGCF(GraphRecommender):
    r"""NGCF with the layer computed by :func:`gnn.kernels.ngcf_layer`.

    .. math::
        E^{l} = \mathrm{LeakyReLU}\big((\hat A + I) E^{l-1} W_1^l
                + (\hat A E^{l-1} \odot E^{l-1}) W_2^l + b^l\big)

    followed by message dropout; the final representation concatenates
    :math:`E^0 \,\|\, \mathrm{norm}(E^1) \,\|\, \dots \,\|\, \mathrm{norm}(E^L)` (row-wise L2
    normalisation), while each layer consumes the un-normalised output of the previous one.

    Args:
        adj: the training adjacency (default construction: symmetric ``Â`` without self loops;
            the ``+ I`` of the paper is the layer's ``self_loop``).
        dim: size of ``E^0`` (default 64).
        layers: output size of each layer, or a number of layers of size ``dim`` (default 3).
        message_dropout: dropout on each layer's output during training (default 0.1).
        node_dropout: probability of dropping each entry of ``Â`` during training, rescaling the
            rest (the official code's "node dropout"; default 0.0).
        self_loop: add ``E^{l-1}`` to ``Â E^{l-1}`` in the ``W_1`` term (default True). Set it
            to False with an adjacency that already holds self loops, such as the official
            code's ``D^{-1}(A + I)``.
        negative_slope: LeakyReLU slope (default 0.2).
    """

    def __init__(self, adj: Adjacency, dim: int = 64, layers: Union[int, Sequence[int]] = 3,
                 message_dropout: float = 0.1, node_dropout: float = 0.0, self_loop: bool = True,
                 negative_slope: float = 0.2):
        super().__init__(adj)
        sizes = [dim] * layers if isinstance(layers, int) else list(layers)
        if any(s < 1 for s in sizes):
            raise ValueError(f"NGCF(): layer sizes must be >= 1, but got {sizes}")
        for name, p in (("message_dropout", message_dropout), ("node_dropout", node_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"NGCF(): {name} must be in [0, 1), but got {p}")
        self.dim, self.layer_sizes = dim, sizes
        self.message_dropout, self.node_dropout = message_dropout, node_dropout
        self.self_loop, self.negative_slope = self_loop, negative_slope
        self._create_embeddings(dim)
        in_sizes = [dim] + sizes[:-1]
        self.w1 = nn.ParameterList(nn.Parameter(torch.empty(i, o)) for i, o in zip(in_sizes, sizes))
        self.w2 = nn.ParameterList(nn.Parameter(torch.empty(i, o)) for i, o in zip(in_sizes, sizes))
        self.bias = nn.ParameterList(nn.Parameter(torch.empty(o)) for o in sizes)
        self.reset_parameters()

    @property
    def output_dim(self) -> int:
        """Size of the final (concatenated) representation."""
        return self.dim + sum(self.layer_sizes)

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)
        for w1, w2, b in zip(self.w1, self.w2, self.bias):
            nn.init.xavier_uniform_(w1)
            nn.init.xavier_uniform_(w2)
            nn.init.zeros_(b)

    def propagate(self, adj: Adjacency):
        if self.training and self.node_dropout > 0:
            adj = adj.dropout(self.node_dropout)
        layers = [self.node_embeddings()]
        for w1, w2, b in zip(self.w1, self.w2, self.bias):
            x = ngcf_layer(adj.rowptr, adj.col, adj.val, layers[-1], w1, w2, b,
                           negative_slope=self.negative_slope, self_loop=self.self_loop,
                           symmetric=adj.symmetric, transpose=adj.transpose)
            layers.append(message_dropout(x, self.message_dropout, self.training))
        return layers

    def readout(self, layers, rows=None):
        """``E^0 ‖ norm(E^1) ‖ … ‖ norm(E^L)`` for the given node rows."""
        if rows is not None:
            layers = [x.index_select(0, rows) for x in layers]
        return torch.cat([layers[0]] + [F.normalize(x, p=2, dim=1) for x in layers[1:]], dim=1)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, dim={self.dim}, layers={self.layer_sizes}, "
                f"message_dropout={self.message_dropout}, node_dropout={self.node_dropout}, "
                f"self_loop={self.self_loop}")
