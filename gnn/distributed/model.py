"""One rank's part of a graph model: its rows of ``E^0``, the replicated weights, the layers.

:class:`ShardedModel` is built from an ordinary, freshly initialised model (so the initial
weights are those of one process for the same seed): it keeps the rows ``[lo, hi)`` of the
layer-0 embeddings as ``node_embedding`` and takes over the other weights (NGCF's ``w1``,
``w2``, ``bias``; any parameter or buffer of the model), which every rank holds whole and whose
gradients are all-reduced. The model object itself stays as the *template* (its embedding
tables dropped) that defines the math: the layer and the read-out.

Per layer, each rank fetches its halo rows (:func:`gnn.distributed.exchange.exchange`), runs
:func:`gnn.kernels.csr_spmm` on its local CSR (``S_r = Â_r [halo; E^k_r]``, the rectangular
block) and hands ``S_r`` and ``E^k_r`` to the model's own
:meth:`~gnn.GraphRecommender.layer_step` (LightGCN: ``E^{k+1} = S``; NGCF: the kernels' dense
step and message dropout), ``num_layers`` times. A model whose math is not layer steps
(:func:`check_shardable`) is refused with the reason.

Randomness does not depend on the number of processes: every rank draws the single-process
masks whole, with the same generator, sizes and order (node dropout: one uniform per global
entry of Â; message dropout: one mask of the global ``(N, d)`` shape per layer), and keeps its
part.
"""
from __future__ import annotations

from typing import List

import torch
from torch import nn

from gnn.adjacency import dropout_keep
from gnn.distributed.exchange import exchange, rows_plan
from gnn.kernels import csr_spmm
from gnn.loss import bpr_loss
from gnn.models import GraphRecommender, model_name

EMBEDDING_TABLES = ("user_embedding", "item_embedding")


def _defined_in(cls: type, name: str) -> type:
    return next(c for c in cls.__mro__ if name in vars(c))


def check_shardable(model) -> int:
    """The number of layers gnn.distributed runs for ``model``, each as its ``layer_step`` on a
    rank's rows; ValueError saying why when that would not be the model's math (a
    ``propagate`` of its own below its ``layer_step``, no ``layer_step``, ``E^0`` computed by
    ``node_embeddings`` rather than the two tables)."""
    cls = type(model)
    name = cls.__name__
    if not isinstance(model, GraphRecommender):
        raise ValueError(f"gnn.distributed trains gnn.GraphRecommender models, not {name}")
    if _defined_in(cls, "node_embeddings") is not GraphRecommender:
        raise ValueError(f"{name} overrides node_embeddings: gnn.distributed shards E^0 as the "
                         f"rows of the user and item tables; train it in one process")
    if _defined_in(cls, "loss") is not GraphRecommender:
        raise ValueError(f"{name} overrides loss: gnn.distributed computes the sharded BPR loss "
                         f"itself and would drop the rest; train it in one process")
    step, propagate = _defined_in(cls, "layer_step"), _defined_in(cls, "propagate")
    if not issubclass(step, propagate):
        raise ValueError(f"{name} overrides propagate (in {propagate.__name__}) below its "
                         f"layer_step (in {step.__name__}): gnn.distributed runs the layers as "
                         f"layer steps and would train other math than one process; define the "
                         f"layer in layer_step, or train it in one process")
    layers = model.num_layers
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 0:
        raise ValueError(f"{name}.num_layers must be an int >= 0, but got {layers!r}")
    if layers and step is GraphRecommender:
        raise ValueError(f"{name} has {layers} layers but no layer_step: gnn.distributed runs "
                         f"a model layer by layer")
    return layers


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
        self.num_layers = check_shardable(model)
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
        for name, param in model.named_parameters(recurse=False):  # shared with the template
            self.register_parameter(name, param)
        for name, buffer in model.named_buffers(recurse=False):
            self.register_buffer(name, buffer, persistent=name not in model._non_persistent_buffers_set)
        self._template = [model]  # a list, so that nn.Module does not register it
        self.node_dropout = float(model.node_dropout)

    def replicated_parameters(self) -> List[nn.Parameter]:
        """The weights every rank holds whole (their gradients are all-reduced)."""
        return [p for n, p in self.named_parameters() if n != "node_embedding"]

    @property
    def template(self):
        return self._template[0]

    def train(self, mode: bool = True):
        super().train(mode)
        self.template.train(mode)  # its layer steps read its own flag (dropout in training)
        return self

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
        """This rank's rows of every layer, ``E^0_r`` first (the template's layer steps)."""
        g, tpl = self.graph, self.template
        val = self._values()
        rows, n_nodes = slice(g.lo, g.hi), self.part.n_nodes
        layers = [self.node_embedding]
        for k in range(self.num_layers):
            x = layers[-1]
            halo_rows = exchange(x.index_select(0, self.halo.send_index), self.halo, self.group)
            s = csr_spmm(g.rowptr, g.col, val, g.assemble(x, halo_rows), transpose=g.transpose)
            layers.append(tpl.layer_step(k, s, x, rows, n_nodes))
        return layers

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

