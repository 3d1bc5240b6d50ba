"""LightGCN (He et al., SIGIR 2020, https://arxiv.org/abs/2002.02126)."""
from __future__ import annotations

import torch

from gnn.graph import Adjacency
from gnn.kernels import csr_spmm
from gnn.models.base import GraphRecommender


def spmm(adj: Adjacency, x: torch.Tensor) -> torch.Tensor:
    """``Â x`` through the library's kernel, telling it how to run the backward."""
    return csr_spmm(adj.rowptr, adj.col, adj.val, x, symmetric=adj.symmetric,
                    transpose=adj.transpose)


class LightGCN(GraphRecommender):
    r"""LightGCN: linear propagation, layer mean.

    .. math::
        E^{k+1} = \hat A E^k, \qquad e^* = \frac{1}{K+1} \sum_{k=0}^{K} E^k

    Args:
        adj: the training adjacency (symmetric normalisation, as in the paper).
        dim: embedding size (default 64).
        num_layers: ``K``, the number of propagation steps (default 3).
        init_std: standard deviation of the normal initialisation of ``E^0`` (default 0.1).
    """

    def __init__(self, adj: Adjacency, dim: int = 64, num_layers: int = 3, init_std: float = 0.1):
        super().__init__(adj)
        if num_layers < 0:
            raise ValueError(f"LightGCN(): num_layers must be >= 0, but got {num_layers}")
        self.dim, self.num_layers, self.init_std = dim, num_layers, init_std
        self._create_embeddings(dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self._init_embeddings_normal(self.init_std)

    def propagate(self, adj: Adjacency):
        layers = [self.node_embeddings()]
        for _ in range(self.num_layers):
            layers.append(spmm(adj, layers[-1]))
        return layers

    def readout(self, layers, rows=None):
        total = None
        for x in layers:
            x = x if rows is None else x.index_select(0, rows)
            total = x if total is None else total + x
        return total / len(layers)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dim={self.dim}, num_layers={self.num_layers}"
