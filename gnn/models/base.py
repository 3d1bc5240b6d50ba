"""What every recommender here shares: the graph, the BPR loss, scoring and top-K.

A model is built on one training :class:`~gnn.adjacency.Adjacency`. The adjacency is not a
parameter: it stays out of ``state_dict`` (weights save and load without it) and follows the
model to whichever device its weights are on, the first time it is needed there.

Inference (:meth:`embeddings`, :meth:`score`, :meth:`recommend`) runs one full propagation in
eval mode and caches the result with a copy of every parameter and buffer it was computed from.
Each later call compares the model's tensors with that copy, element by element, and propagates
again on any difference: whatever changed them (any optimiser, fused ones included, which do not
bump a tensor's version counter; ``load_state_dict``; writes through ``param.data``; ``.to()``).
The cost is one copy of the weights and one comparison per call, a pass over the weights,
much less than a propagation. State outside the parameters and buffers (a plain attribute read
by ``propagate``) is not watched: call :meth:`GraphRecommender.invalidate_cache` after changing it.

A model's math is four methods: :meth:`~GraphRecommender.node_embeddings` (``E^0``),
:meth:`~GraphRecommender.layer_step` (one layer, given ``S = Â E^k``),
:meth:`~GraphRecommender.propagate` (the layers; by default ``num_layers`` layer steps) and
:meth:`~GraphRecommender.readout` (the final embeddings from the layers). Training
(:meth:`~GraphRecommender.loss`) and inference both go through them; a built-in model's fast
batch path is taken only while none of the four is overridden (:meth:`_math_is`), so a subclass
trains what it evaluates. ``gnn.distributed`` runs the same ``layer_step`` on each rank's rows.
"""
from __future__ import annotations

import inspect
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from gnn.adjacency import Adjacency
from gnn.data import UserItemCSR
from gnn.kernels import csr_spmm
from gnn.loss import BPR, Objective

#: The default objective of :meth:`GraphRecommender.loss`.
_BPR = BPR()
#: The methods that define a model's math (module docstring).
MATH_METHODS = ("node_embeddings", "layer_step", "propagate", "readout")


def spmm(adj: Adjacency, x: torch.Tensor) -> torch.Tensor:
    """``Â x`` through the library's kernel, telling it how to run the backward."""
    return csr_spmm(adj.rowptr, adj.col, adj.val, x, symmetric=adj.symmetric,
                    transpose=adj.transpose)


class GraphRecommender(nn.Module):
    """Base class of the models trained with BPR (docs/ARCHITECTURE.md, "Adding a model").

    A subclass creates its tables (``_create_embeddings``), defines its math (module docstring:
    ``layer_step`` and ``num_layers``, or ``propagate``; ``readout``), ``reset_parameters``,
    and sets ``self.init_args`` (its constructor arguments, for :func:`gnn.save_model`).
    ``config_options`` and :meth:`adjacency_options` say how a :class:`gnn.TrainConfig`
    builds it (:meth:`from_config`).
    """

    #: The :class:`gnn.TrainConfig` fields this model reads, each mapped to the constructor
    #: argument it sets (:meth:`from_config`); a field left None keeps the argument's default.
    config_options: Dict[str, str] = {"dim": "embedding_dim"}
    #: ``K``, the number of propagation layers (:meth:`propagate`).
    num_layers: int = 0
    #: Probability of dropping each entry of ``Â`` during training (:meth:`training_adjacency`).
    node_dropout: float = 0.0

    # -- built from a training config --------------------------------------------------------------
    @classmethod
    def adjacency_options(cls, config) -> dict:
        """``build_adjacency``'s ``norm`` and ``self_loops`` for a run of this model
        (``config``: a :class:`gnn.TrainConfig`): its ``adjacency``, without self-loops."""
        return {"norm": config.adjacency, "self_loops": False}

    @classmethod
    def option_defaults(cls) -> dict:
        """``{config field: the constructor's default}`` of the fields in ``config_options``
        (``inspect.Parameter.empty`` where the argument has none)."""
        params = inspect.signature(cls.__init__).parameters
        return {field: params[arg].default if arg in params else inspect.Parameter.empty
                for field, arg in cls.config_options.items()}

    @classmethod
    def from_config(cls, config, adj: Adjacency) -> "GraphRecommender":
        """The model a :class:`gnn.TrainConfig` asks for, on ``adj`` (built with
        :meth:`adjacency_options`): ``cls(adj, **arguments)`` with an argument per field of
        ``config_options`` that is not None."""
        kwargs = {arg: getattr(config, field) for field, arg in cls.config_options.items()
                  if getattr(config, field) is not None}
        return cls(adj, **kwargs)

    def __init__(self, adj: Adjacency):
        super().__init__()
        if not isinstance(adj, Adjacency):
            raise TypeError(f"{type(self).__name__}(): adj must be a gnn.Adjacency "
                            f"(see gnn.build_adjacency), but got {type(adj).__name__}")
        self.n_users, self.n_items = adj.n_users, adj.n_items
        self._adj = adj
        # (layout, snapshot, user_emb, item_emb) of the last inference: _cached_embeddings()
        self._cache: Optional[tuple] = None

    # -- the graph -------------------------------------------------------------------------------
    @property
    def adj(self) -> Adjacency:
        """The training adjacency, on the same device as the weights."""
        device = self.user_embedding.weight.device
        if self._adj.device != device:
            self._adj = self._adj.to(device)
        return self._adj

    def _check_adj(self, adj: Optional[Adjacency]) -> Adjacency:
        if adj is None:
            return self.adj
        if not isinstance(adj, Adjacency):
            raise TypeError(f"adj must be a gnn.Adjacency, but got {type(adj).__name__}")
        if (adj.n_users, adj.n_items) != (self.n_users, self.n_items):
            raise ValueError(f"adj has {adj.n_users} users and {adj.n_items} items, but the model "
                             f"was built for {self.n_users} users and {self.n_items} items")
        if adj.device != self.user_embedding.weight.device:
            raise ValueError(f"adj is on {adj.device}, but the model's weights are on "
                             f"{self.user_embedding.weight.device}")
        return adj

    # -- embeddings ------------------------------------------------------------------------------
    def _create_embeddings(self, dim: int) -> None:
        """The layer-0 tables ``E^0``: one row per user and one per item."""
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"{type(self).__name__}(): embedding_dim must be a positive int, "
                             f"but got {dim!r}")
        self.user_embedding = nn.Embedding(self.n_users, dim)
        self.item_embedding = nn.Embedding(self.n_items, dim)

    def _normal_init(self, std: float) -> None:
        """``E^0 ~ N(0, std²)`` (LightGCN's and MF's initialisation)."""
        nn.init.normal_(self.user_embedding.weight, std=std)
        nn.init.normal_(self.item_embedding.weight, std=std)

    def node_embeddings(self) -> torch.Tensor:
        """``E^0`` of all nodes in graph order: users, then items."""
        return torch.cat([self.user_embedding.weight, self.item_embedding.weight])

    def layer_step(self, k: int, s: torch.Tensor, x: torch.Tensor,
                   rows: Union[None, slice, torch.Tensor] = None,
                   n_nodes: Optional[int] = None) -> torch.Tensor:
        """Layer ``k + 1`` at some node rows, from ``x`` (layer ``k`` at those rows) and
        ``s = (Â E^k)`` at those rows. ``rows`` says which rows of the whole graph they are and
        ``n_nodes`` how many the graph has (None: all of them), so that a random mask is drawn
        for the whole layer and the same rows of it are kept (gnn.distributed's ranks)."""
        raise NotImplementedError(f"{type(self).__name__} does not define layer_step")

    def training_adjacency(self, adj: Adjacency) -> Adjacency:
        """``adj`` with node dropout in training (``node_dropout``), else ``adj`` itself."""
        return adj.dropout(self.node_dropout) if self.training and self.node_dropout > 0 else adj

    def propagate(self, adj: Adjacency) -> List[torch.Tensor]:
        """Node embeddings of every layer (users first, then items), ``E^0`` first:
        ``E^{k+1} = layer_step(k, Â E^k, E^k)``, ``num_layers`` times (Â with node dropout in
        training). Random draws, in this order: node dropout, then each layer's."""
        adj = self.training_adjacency(adj)
        layers = [self.node_embeddings()]
        for k in range(self.num_layers):
            layers.append(self.layer_step(k, spmm(adj, layers[-1]), layers[-1]))
        return layers

    def readout(self, layers: List[torch.Tensor], rows: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Final embeddings ``e*`` of the node ``rows`` (all nodes when None) from the layers."""
        raise NotImplementedError(f"{type(self).__name__} does not define readout")

    def _math_is(self, cls: type, methods=MATH_METHODS) -> bool:
        """Whether this model's math is ``cls``'s: none of ``methods`` is overridden below
        ``cls``, so ``cls``'s fast paths compute exactly what this model evaluates."""
        return all(getattr(type(self), name) is getattr(cls, name) for name in methods)

    def forward(self, adj: Optional[Adjacency] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Final ``(user_emb, item_emb)`` after one full-graph propagation.

        ``adj`` overrides the training graph (same sizes and device).
        """
        final = self.readout(self.propagate(self._check_adj(adj)))
        return final[: self.n_users], final[self.n_users:]

    def batch_embeddings(self, users, pos_items, neg_items, adj: Optional[Adjacency] = None):
        """Final embeddings of a training batch's users, positives and negatives.

        One full propagation, then the read-out only for the rows the batch uses: cheaper than
        :meth:`forward` followed by indexing, forward and backward. (The built-in models run
        a faster path of the same math while a subclass does not change it: :meth:`_math_is`.)
        """
        layers = self.propagate(self._check_adj(adj))
        rows = self._batch_node_rows(users, pos_items, neg_items)
        return self.readout(layers, rows).split([users.numel(), pos_items.numel(), neg_items.numel()])

    def loss(self, users, pos_items, neg_items, reg: float = 1e-4, *, reg_on: str = "initial",
             check: bool = True, objective: Optional[Objective] = None) -> torch.Tensor:
        r"""The training loss of a batch of B pairs (u, i), differentiable (docs/DESIGN.md §3).

        ``neg_items`` holds one negative per pair (shape (B,)) or K (shape (B, K)).
        ``objective`` is a :class:`gnn.loss.Objective` (:func:`gnn.loss.make_objective`),
        by default BPR:

        .. math::
            L = \frac1{BK} \sum_{b,k} -\log\sigma(\hat y_{ui} - \hat y_{uj_k})
                + \lambda \frac{\|e^0_u\|^2 + \|e^0_i\|^2 + \frac1K\sum_k\|e^0_{j_k}\|^2}{2B}

        ``reg_on="initial"`` penalises the batch rows' layer-0 embeddings (the papers' form);
        ``"final"`` the final ones (NGCF's official code). ``check=False`` skips the id checks
        (they read the ids, a host sync on CUDA): for ids the library produced itself.
        """
        objective, users, pos_items, flat, per_pair = self._loss_arguments(
            users, pos_items, neg_items, reg_on, objective, check)
        if reg_on == "initial":
            eu, ei, ej, u0, i0, j0 = self._loss_rows(users, pos_items, flat)
        else:
            eu, ei, ej = self.batch_embeddings(users, pos_items, flat)
            u0, i0, j0 = eu, ei, ej
        if per_pair is not None:  # (B * K, d) rows -> (B, K, d)
            ej, j0 = ej.view(-1, per_pair, ej.shape[-1]), j0.view(-1, per_pair, j0.shape[-1])
        return objective(eu, ei, ej, u0, i0, j0, reg)[0]

    def _loss_arguments(self, users, pos_items, neg_items, reg_on, objective, check):
        """:meth:`loss`'s arguments checked: objective (None: BPR), ids, negatives flat, K."""
        if reg_on not in ("initial", "final"):
            raise ValueError(f"loss(): reg_on must be 'initial' or 'final', but got {reg_on!r}")
        objective = _BPR if objective is None else objective
        if not isinstance(objective, Objective):
            raise TypeError(f"loss(): objective must be a gnn.loss.Objective (see "
                            f"gnn.loss.make_objective), but got {type(objective).__name__}")
        if check:
            users, pos_items, neg_items = self._checked_batch(users, pos_items, neg_items)
        per_pair = None if neg_items.dim() == 1 else neg_items.shape[1]
        return objective, users, pos_items, neg_items.reshape(-1), per_pair

    def _checked_batch(self, users, pos_items, neg_items):
        """The ids of :meth:`loss` as int64 tensors on the model's device, checked: ranges,
        equal lengths, negatives of shape (B,) or (B, K) with K >= 1, a non-empty batch."""
        shape = tuple(neg_items.shape) if isinstance(neg_items, torch.Tensor) \
            else np.shape(neg_items)
        users = self._ids(users, "users", self.n_users)
        pos_items = self._ids(pos_items, "pos_items", self.n_items)
        negs = self._ids(neg_items, "neg_items", self.n_items)
        if not users.numel() == pos_items.numel() == (shape[0] if shape else 1):
            raise ValueError(f"loss(): users, pos_items and neg_items must have the same "
                             f"length, but got {users.numel()}, {pos_items.numel()} and "
                             f"{shape[0] if shape else 1}")
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] < 1):
            raise ValueError(f"loss(): neg_items must have shape (B,) (one negative per pair) "
                             f"or (B, K) with K >= 1 (K per pair), but got {shape}")
        if users.numel() == 0:
            raise ValueError("loss(): the batch is empty")
        return users, pos_items, negs.view(shape)

    def _loss_rows(self, users, pos_items, neg_items):
        """``(eu, ei, ej, u0, i0, j0)``: :meth:`batch_embeddings` and the same rows of ``E^0``
        (what the L2 term penalises). Subclasses take both from one propagation, so that the
        backward scatters into each embedding table once (not once per tensor)."""
        eu, ei, ej = self.batch_embeddings(users, pos_items, neg_items)
        u0 = self.user_embedding.weight.index_select(0, users)
        i0 = self.item_embedding.weight.index_select(0, pos_items)
        j0 = self.item_embedding.weight.index_select(0, neg_items)
        return eu, ei, ej, u0, i0, j0

    def _batch_node_rows(self, users, pos_items, neg_items) -> torch.Tensor:
        """The batch's node ids in graph order: users, then positives, then negatives."""
        return torch.cat([users, pos_items + self.n_users, neg_items + self.n_users])

    # -- inference -------------------------------------------------------------------------------
    def train(self, mode: bool = True):
        self._cache = None
        return super().train(mode)

    def invalidate_cache(self) -> None:
        """Forget the cached inference embeddings (needed only after changing state that is
        neither a parameter nor a buffer; see the module docstring)."""
        self._cache = None

    def _watched_tensors(self) -> List[torch.Tensor]:
        """What the cached embeddings are a function of: every parameter and buffer."""
        return [t.detach() for t in self.parameters()] + [t.detach() for t in self.buffers()]

    def _layout(self, tensors) -> tuple:
        return (id(self.adj),) + tuple((t.device, t.dtype, t.shape) for t in tensors)

    def _cached_embeddings(self) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        """The cached ``(user_emb, item_emb)`` if the watched tensors still equal their copies
        element by element (a NaN never equals itself: such a model always propagates again)."""
        if self._cache is None or self.training:
            return None
        layout, snapshot, users, items = self._cache
        tensors = self._watched_tensors()
        if layout != self._layout(tensors):
            return None
        if not all(torch.equal(t, s) for t, s in zip(tensors, snapshot)):
            return None
        return users, items

    @torch.no_grad()
    def embeddings(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Final ``(user_emb, item_emb)`` for inference: eval mode (no dropout), no autograd
        graph, cached until a parameter or buffer changes (see the module docstring)."""
        hit = self._cached_embeddings()
        if hit is not None:
            return hit
        tensors = self._watched_tensors()
        snapshot = [t.clone() for t in tensors]  # taken before the propagation reads them
        layout = self._layout(tensors)
        was_training = self.training
        super().train(False)  # nn.Module.train: keep our cache logic out of this switch
        try:
            users, items = self.forward()
            users, items = users.detach().clone(), items.detach().clone()  # MF returns its weights
        finally:
            super().train(was_training)
        self._cache = None if was_training else (layout, snapshot, users, items)
        return users, items

    @torch.no_grad()
    def score(self, users, items) -> torch.Tensor:
        """``ŷ_ui = ⟨e*_u, e*_i⟩`` for paired 1-D user and item ids."""
        users = self._ids(users, "users", self.n_users)
        items = self._ids(items, "items", self.n_items)
        if users.numel() != items.numel():
            raise ValueError(f"score(): users and items must have the same length, but got "
                             f"{users.numel()} and {items.numel()}")
        user_emb, item_emb = self.embeddings()
        return (user_emb[users] * item_emb[items]).sum(-1)

    @torch.no_grad()
    def recommend(self, users, k: int = 10, *, exclude=None, return_scores: bool = False):
        """Top-``k`` items for each user, best first (equal scores: lower item id first).

        Args:
            users: user ids (1-D).
            k: list length (>= 1).
            exclude: the items never recommended: None for the training items the model was
                built on, a :class:`gnn.data.UserItemCSR` (e.g. ``dataset.seen_csr``, every
                interaction in any split), or False for none.
            return_scores: also return the scores.

        Returns:
            a ``(len(users), k)`` LongTensor of item ids (and their scores); slots beyond the
            number of items left hold -1 / -inf.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"recommend(): k must be an int >= 1, but got {k!r}")
        users = self._ids(users, "users", self.n_users)
        user_emb, item_emb = self.embeddings()
        scores = user_emb[users] @ item_emb.T
        excluded = self._exclusion(exclude)
        if excluded is not None:
            rows, cols = excluded.entries_of(users, scores.device)
            scores[rows, cols] = float("-inf")
        # Ties by item id: topk's order among equal scores is unspecified, a stable sort's is not.
        order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
        top_scores = torch.gather(scores, 1, order)
        order[torch.isinf(top_scores)] = -1
        if k > self.n_items:
            pad = k - self.n_items
            order = nn.functional.pad(order, (0, pad), value=-1)
            top_scores = nn.functional.pad(top_scores, (0, pad), value=float("-inf"))
        return (order, top_scores) if return_scores else order

    def _exclusion(self, exclude) -> Optional[UserItemCSR]:
        if exclude is False:
            return None
        if exclude is None:
            if self.adj.interactions is None:
                raise ValueError("recommend(): the adjacency does not know its training "
                                 "interactions; pass exclude=<UserItemCSR> or exclude=False")
            return self.adj.interactions
        if not isinstance(exclude, UserItemCSR):
            raise TypeError(f"recommend(): exclude must be None, False or a gnn.data.UserItemCSR, "
                            f"but got {type(exclude).__name__}")
        if exclude.shape != (self.n_users, self.n_items):
            raise ValueError(f"recommend(): exclude covers {exclude.shape} users x items, but the "
                             f"model has {(self.n_users, self.n_items)}")
        return exclude

    def _ids(self, ids, name: str, n: int) -> torch.Tensor:
        """``ids`` as a 1-D int64 tensor on the model's device, checked against ``[0, n)``."""
        device = self.user_embedding.weight.device
        if isinstance(ids, torch.Tensor):
            if ids.device != device:
                raise ValueError(f"{name} is on {ids.device}, but the model is on {device}")
        else:
            array = np.asarray(ids)
            if array.size == 0:  # an empty list has no integer dtype of its own
                array = array.astype(np.int64)
            ids = torch.as_tensor(array, device=device)
        if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer ids, but got dtype {ids.dtype}")
        ids = ids.reshape(-1).long()
        if ids.numel():
            lo, hi = (int(v) for v in torch.aminmax(ids))
            if lo < 0 or hi >= n:
                raise ValueError(f"{name} must be ids in [0, {n}), but got range [{lo}, {hi}]")
        return ids

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.init_args.items())

