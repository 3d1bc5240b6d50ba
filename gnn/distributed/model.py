"""One rank's part of a graph model: its rows of ``E^0``, the replicated weights, the layers.

:class:`ShardedModel` is built from an ordinary, freshly initialised model (so the initial
weights are those of one process for the same seed): it keeps the rows ``[lo, hi)`` of the
layer-0 embeddings as ``node_embedding`` and takes over the other weights (NGCF's ``w1``,
``w2``, ``bias``), which every rank holds whole and whose gradients are all-reduced. The
model object itself stays as the *template* (its embedding tables dropped) for the read-out and
the hyperparameters.

Per layer, each rank fetches its halo rows (:func:`gnn.distributed.exchange.exchange`) and runs
the library's kernels on its local CSR: LightGCN ``E^{k+1}_r = Â_r [halo; E^k_r]`` with
:func:`gnn.kernels.csr_spmm` on the rectangular block; NGCF ``S = Â_r buffer`` with the same
SpMM and the dense part of the layer (docs/DESIGN.md §2) with torch ops on the rank's rows.

Randomness does not depend on the number of processes: every rank draws the single-process
masks whole, with the same generator, sizes and order (node dropout: one uniform per global
entry of Â; message dropout: one mask of the global ``(N, d)`` shape per layer), and keeps its
part.
"""
from __future__ import annotations

from typing import List

import torch
import torch.nn.functional as F
from torch import nn

from gnn.adjacency import dropout_keep
from gnn.distributed.exchange import exchange, rows_plan
from gnn.kernels import csr_spmm
from gnn.loss import bpr_loss
from gnn.models import LightGCN, NGCF, model_name
from gnn.models.ngcf import message_dropout_mask

EMBEDDING_TABLES = ("user_embedding", "item_embedding")


class ShardedModel(nn.Module):
    """Rank ``rank``'s share of ``model`` on the partition ``part`` (module docstring).

    Args:
        model: the ordinary model, initialised (consumed: its embedding tables are dropped and
            its other weights move here).
        graph: the rank's :class:`~gnn.distributed.partition.LocalGraph` (on the device).
        part: the :class:`~gnn.distributed.partition.Partition`.
        halo: the rank's halo :class:`~gnn.distributed.exchange.ExchangePlan`.
        global_nnz: entries of the whole Â (node dropout draws one uniform per entry).
    """

    def __init__(self, model, graph, part, rank: int, halo, global_nnz: int, group=None):
        super().__init__()
        self.name, self.init_args = model_name(model), dict(model.init_args)
        self.n_users, self.n_items = model.n_users, model.n_items
        self.graph, self.part, self.rank, self.halo, self.group = graph, part, rank, halo, group
        self.global_nnz = int(global_nnz)
        lo, hi = graph.lo, graph.hi
        with torch.no_grad():
            rows = model.node_embeddings()[lo:hi].clone()
        self.node_embedding = nn.Parameter(rows.to(graph.val.device))
        for name, child in list(model.named_children()):
            if name in EMBEDDING_TABLES:
                setattr(model, name, None)
            else:
                self.add_module(name, child)
        self._template = [model]  # a list, so that nn.Module does not register it
        self.node_dropout = float(getattr(model, "node_dropout", 0.0))

    def replicated_parameters(self) -> List[nn.Parameter]:
        """The weights every rank holds whole (their gradients are all-reduced)."""
        return [p for n, p in self.named_parameters() if n != "node_embedding"]

    @property
    def template(self):
        return self._template[0]

    # -- propagation --------------------------------------------------------------------------
    def _values(self) -> torch.Tensor:
        """Â_r's values, masked by node dropout in training (the single process's mask)."""
        val = self.graph.val
        p = self.node_dropout
        if not (self.training and p > 0):
            return val
        start, end = self.graph.entries
        keep = dropout_keep(self.global_nnz, p, val.device)[start:end]
        return val * keep / (1.0 - p)

    def propagate(self) -> List[torch.Tensor]:
        """This rank's rows of every layer, ``E^0_r`` first."""
        g, tpl = self.graph, self.template
        val = self._values()
        layers = [self.node_embedding]
        n_layers = tpl.num_layers if isinstance(tpl, (NGCF, LightGCN)) else 0
        for k in range(n_layers):
            x = layers[-1]
            halo_rows = exchange(x.index_select(0, self.halo.send_index), self.halo, self.group)
            buffer = g.assemble(x, halo_rows)
            s = csr_spmm(g.rowptr, g.col, val, buffer, transpose=g.transpose)
            if isinstance(tpl, NGCF):
                s = self._ngcf_dense(k, s, x)
            layers.append(s)
        return layers

    def _ngcf_dense(self, k: int, s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``LeakyReLU((S + [self_loop] E) W1 + (S ⊙ E) W2 + b)`` on this rank's rows, then
        message dropout with this rank's rows of the global mask."""
        tpl = self.template
        u1 = s + x if tpl.self_loop else s
        z = torch.addmm(self.bias[k], u1, self.w1[k]).addmm(s * x, self.w2[k])
        out = F.leaky_relu(z, tpl.negative_slope)
        if self.training and tpl.message_dropout > 0:
            like = out.new_empty(()).expand(self.part.n_nodes, out.shape[1])
            rows = slice(self.graph.lo, self.graph.hi)
            out = out * message_dropout_mask(like, tpl.message_dropout, rows)
        return out

    def readout(self, layers, rows=None) -> torch.Tensor:
        """Final embeddings of local ``rows`` (all of this rank's rows when None)."""
        return self.template.readout(layers, rows)

    # -- the BPR loss of a global batch --------------------------------------------------------
    def loss(self, users, pos_items, neg_items, reg: float, reg_on: str = "initial"):
        """This rank's share of the single-process BPR loss of the global batch ``(u, i, j)``;
        the shares of all ranks add up to it (``gnn.GraphRecommender.loss``).

        Rank r scores the triples ``[r B / P, (r + 1) B / P)`` with final embeddings fetched
        from their owners, and adds the L2 term of the batch rows it owns.
        """
        n, world, lo, hi = users.numel(), self.part.world_size, self.graph.lo, self.graph.hi
        cuts = [n * q // world for q in range(world + 1)]
        nodes = torch.stack([users, pos_items + self.n_users, neg_items + self.n_users])
        wanted = [torch.unique(nodes[:, cuts[q]: cuts[q + 1]]) for q in range(world)]
        plan = rows_plan(wanted, self.part, self.rank)
        layers = self.propagate()
        received = exchange(self.readout(layers, plan.send_index), plan, self.group)
        mine = nodes[:, cuts[self.rank]: cuts[self.rank + 1]].contiguous()
        if mine.shape[1]:
            eu, ei, ej = received[torch.searchsorted(wanted[self.rank], mine)]
            share = bpr_loss(eu, ei, ej, eu[:0], ei[:0], ej[:0], 0.0)[1] * (mine.shape[1] / n)
        else:  # more ranks than triples: nothing to score, but the graph stays the same shape
            share = received.sum() * 0.0
        flat = nodes.reshape(-1)
        owned = flat[(flat >= lo) & (flat < hi)] - lo
        regularised = (self.node_embedding.index_select(0, owned) if reg_on == "initial"
                       else self.readout(layers, owned))
        return share + reg * regularised.pow(2).sum() / (2 * n)

    def final_rows(self) -> torch.Tensor:
        """Final embeddings of this rank's rows, for inference (no autograd)."""
        with torch.no_grad():
            return self.readout(self.propagate())

