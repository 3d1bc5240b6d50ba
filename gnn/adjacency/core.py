"""The normalised user–item bipartite adjacency, held in CSR (docs/DESIGN.md §1).

Nodes are users first, then items (item ``j`` is node ``n_users + j``), ``N = n_users + n_items``;
the normalisation is gnn/adjacency/normalise.py's. Memory is O(N + nnz): the dense N × N matrix
never exists. The adjacency owns its invariants: it records its normalisation, whether it holds
self-loops and whether its values are symmetric; whatever breaks symmetry (dropout, new values)
yields an adjacency that carries its transpose, so every backward pass is exact.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional, Tuple

import scipy.sparse as sp
import torch

from gnn.adjacency import inputs
from gnn.adjacency.normalise import NORMS, Structure, normalised_values, structure
from gnn.data import UserItemCSR
from gnn.kernels import csr_transpose


@dataclass(frozen=True, eq=False)
class Adjacency:
    """A square CSR matrix over the joint user–item graph, plus what its backward pass needs.

    Build one with :func:`build_adjacency`, :meth:`from_edge_index` or :meth:`from_scipy`.

    Attributes:
        rowptr: int64 (N + 1,) row offsets.
        col: int32 (nnz,) column of each entry, sorted within a row.
        val: float32 (nnz,) weight of each entry.
        n_users, n_items: the two node types; ``n_nodes = n_users + n_items``.
        norm: ``"sym"`` or ``"row"`` (how ``val`` was normalised), ``"custom"`` after
            :meth:`with_values`.
        self_loops: True when the diagonal ``I`` is part of the matrix (a model must not add it
            again).
        symmetric: True when ``Âᵀ = Â`` holds for the values, so a backward SpMM reuses this CSR.
        transpose: for a non-symmetric matrix, ``(rowptr_t, col_t, perm_t)`` such that ``Âᵀ`` has
            values ``val[perm_t]`` (so a masked ``val`` masks the transpose too); None otherwise.
        interactions: the training interactions it was built from (host CSR), when known.
        weights: the interactions' edge weights it was normalised from (None: all 1).
    """

    rowptr: torch.Tensor
    col: torch.Tensor
    val: torch.Tensor
    n_users: int
    n_items: int
    norm: str
    self_loops: bool
    symmetric: bool
    transpose: Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None
    interactions: Optional[UserItemCSR] = field(default=None, repr=False)
    weights: Optional[torch.Tensor] = field(default=None, repr=False)
    # Where each interaction's two entries are (for reweighted()), on the host.
    _structure: Optional[Structure] = field(default=None, repr=False)
    # The transpose of the sparsity pattern, derived once and shared by every with_values()
    # copy on the same device (node dropout asks for it at every step).
    _pattern_t: dict = field(default_factory=dict, repr=False)

    # -- construction from user formats ----------------------------------------------------------
    @classmethod
    def from_edge_index(cls, edge_index, num_users: int, num_items: int, *, edge_weight=None,
                        norm: str = "sym", self_loops: bool = False) -> "Adjacency":
        """From a ``(2, E)`` integer tensor of (user, item) edges.

        Convention: ``edge_index[0]`` holds user ids in ``[0, num_users)`` and ``edge_index[1]``
        item ids in ``[0, num_items)``, both 0-based. The homogeneous form of graph libraries
        (items offset by ``num_users``, each edge possibly listed in both directions) is
        recognised and folded into pairs. Repeated pairs are one interaction.
        ``edge_weight`` (E,), >= 0, optional: each interaction's weight (repeats add up) enters
        ``A`` before the normalisation; a tensor that requires grad stays differentiable
        (learnable edge weights, through :func:`gnn.kernels.csr_spmm`).
        """
        interactions, weights = inputs.from_edge_index(edge_index, num_users, num_items,
                                                       edge_weight)
        return build_adjacency(interactions, norm=norm, self_loops=self_loops, weights=weights)

    @classmethod
    def from_scipy(cls, matrix, *, num_users: Optional[int] = None, weighted: bool = False,
                   norm: str = "sym", self_loops: bool = False) -> "Adjacency":
        """From a scipy sparse ``(n_users, n_items)`` interaction matrix ``R``, or the square
        joint matrix ``[[0, R], [Rᵀ, 0]]`` given ``num_users`` (a square matrix without it is
        refused: which of the two it is cannot be told). Any non-zero entry is one interaction;
        ``weighted=True`` takes the entries as edge weights (else they are ignored)."""
        interactions, weights = inputs.from_scipy(matrix, num_users, weighted)
        return build_adjacency(interactions, norm=norm, self_loops=self_loops, weights=weights)

    def reweighted(self, edge_weight: torch.Tensor) -> "Adjacency":
        """The same graph normalised from new interaction weights (one per interaction, in
        ``interactions`` order, >= 0), differentiable in them: learnable edge weights.
        No host sync and no check of the values (a model calls this at every step)."""
        if self._structure is None or self.norm not in NORMS:
            raise ValueError("Adjacency.reweighted(): only an adjacency built by "
                             "build_adjacency / from_edge_index / from_scipy can be reweighted")
        n = self._structure.users.shape[0]
        if not isinstance(edge_weight, torch.Tensor) or tuple(edge_weight.shape) != (n,):
            raise ValueError(f"Adjacency.reweighted(): edge_weight must be a tensor of shape "
                             f"({n},), one per interaction, but got "
                             f"{getattr(edge_weight, 'shape', type(edge_weight).__name__)}")
        val = normalised_values(self._structure, self.n_users, self.n_items, edge_weight,
                                self.norm, self.self_loops).to(self.val.dtype)
        symmetric = self.norm == "sym"
        return replace(self, val=val, weights=edge_weight, symmetric=symmetric,
                       transpose=None if symmetric else self._pattern_transpose())

    # -- sizes -----------------------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return self.n_users + self.n_items

    @property
    def nnz(self) -> int:
        return int(self.col.numel())

    @property
    def device(self) -> torch.device:
        return self.val.device

    @property
    def nbytes(self) -> int:
        """Bytes held by the CSR arrays (and the transpose's, when kept)."""
        tensors = [self.rowptr, self.col, self.val] + list(self.transpose or ())
        return sum(t.numel() * t.element_size() for t in tensors)

    # -- copies ----------------------------------------------------------------------------------
    def to(self, device) -> "Adjacency":
        """A copy on ``device`` (the same object when it is already there).

        A copy to the host is synchronous: a non-blocking device → host copy may return before
        the data has landed. Host → device copies are non-blocking only from pinned memory.
        """
        device = torch.device(device)
        if self.val.device == device:
            return self

        def move(t: torch.Tensor) -> torch.Tensor:
            pinned = device.type == "cuda" and t.device.type == "cpu" and t.is_pinned()
            return t.to(device, non_blocking=pinned)

        transpose = tuple(move(t) for t in self.transpose) if self.transpose else None
        weights = None if self.weights is None else move(self.weights)
        return replace(self, rowptr=move(self.rowptr), col=move(self.col), val=move(self.val),
                       transpose=transpose, weights=weights, _pattern_t={})

    def with_values(self, val: torch.Tensor) -> "Adjacency":
        """The same sparsity pattern with new values (e.g. masked by dropout).

        New values need not be symmetric, so the result keeps (or derives once) the transpose
        of the pattern: its backward pass stays exact. ``norm`` becomes ``"custom"`` unless the
        values are a rescaled mask of these (see :meth:`dropout`).
        """
        if not isinstance(val, torch.Tensor) or val.shape != self.val.shape:
            raise ValueError(f"Adjacency.with_values(): expected a tensor of {tuple(self.val.shape)} "
                             f"values, but got {getattr(val, 'shape', type(val).__name__)}")
        if val.device != self.device:
            raise ValueError(f"Adjacency.with_values(): values must be on {self.device}, "
                             f"but got {val.device}")
        return replace(self, val=val, norm="custom", symmetric=False,
                       transpose=self.transpose or self._pattern_transpose())

    def dropout(self, p: float, generator: Optional[torch.Generator] = None) -> "Adjacency":
        """Drop each entry with probability ``p`` and rescale the kept ones by ``1/(1-p)``.

        NGCF's "node dropout" as its official code does it (entries of Â, independently, not
        nodes), by masking ``val``; the CSR structure is untouched. The mask is one uniform draw
        per entry in CSR order, so it is reproducible under ``torch.manual_seed`` (or
        ``generator``). The result is not symmetric: it carries the transpose.
        """
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Adjacency.dropout(): p must be in [0, 1), but got {p}")
        if p == 0.0:
            return self
        keep = dropout_keep(self.nnz, p, self.device, generator)
        dropped = self.with_values(self.val * keep / (1.0 - p))
        return replace(dropped, norm=self.norm)

    def _pattern_transpose(self):
        """(rowptr_t, col_t, perm_t) of the pattern, computed once per device and shared."""
        hit = self._pattern_t.get("t")
        if hit is None:
            hit = csr_transpose(self.rowptr, self.col, self.n_nodes)
            self._pattern_t["t"] = hit
        return hit

    def to_scipy(self) -> sp.csr_matrix:
        """The matrix as scipy CSR (float64), for tests and baselines."""
        return sp.csr_matrix((self.val.double().cpu().numpy(), self.col.cpu().numpy(),
                              self.rowptr.cpu().numpy()), shape=(self.n_nodes, self.n_nodes))

    def __repr__(self) -> str:
        kind = "symmetric" if self.symmetric else "non-symmetric"
        loops = ", self_loops" if self.self_loops else ""
        return (f"Adjacency(n_users={self.n_users}, n_items={self.n_items}, nnz={self.nnz}, "
                f"norm={self.norm!r}{loops}, {kind}, device={self.device}, "
                f"{self.nbytes / 2**20:.2f} MiB)")


def dropout_keep(nnz: int, p: float, device, generator: Optional[torch.Generator] = None):
    """Node dropout's mask: one uniform draw per entry in CSR order, kept where ``>= p``.

    The one definition of the draw, shared by :meth:`Adjacency.dropout` and gnn.distributed
    (which keeps the entries of its rows: its masks are one process's).
    """
    return torch.rand(nnz, device=device, generator=generator) >= p


def build_adjacency(interactions, item=None, n_users: Optional[int] = None,
                    n_items: Optional[int] = None, *, norm: str = "sym",
                    self_loops: bool = False, weights: Optional[torch.Tensor] = None) -> Adjacency:
    """Build the normalised bipartite adjacency from training interactions
    (gnn/adjacency/normalise.py has the math).

    Call it with the dataset's interactions, ``build_adjacency(ds.train_csr, norm="sym")``, or
    with pairs, ``build_adjacency(user, item, n_users, n_items)``.

    Args:
        interactions: a :class:`gnn.data.UserItemCSR`, or an integer array of user ids
            (then ``item``, ``n_users`` and ``n_items`` are required).
        norm: ``"sym"`` (default, ``D^{-1/2} A D^{-1/2}``) or ``"row"`` (``D^{-1} A``).
        self_loops: add the identity (``Â + I`` for "sym", ``D^{-1}(A + I)`` for "row").
        weights: one weight per interaction (in the UserItemCSR's order), >= 0; None: all 1.
            Values are computed in float64 and stored as float32, except for weights that
            require grad (kept in their dtype, differentiable).
    """
    if norm not in NORMS:
        raise ValueError(f"build_adjacency(): norm must be one of {NORMS}, but got {norm!r}")
    if not isinstance(interactions, UserItemCSR):
        if item is None or n_users is None or n_items is None:
            raise TypeError("build_adjacency(): pass a gnn.data.UserItemCSR, or user, item, "
                            "n_users and n_items")
        interactions = UserItemCSR.from_pairs(interactions, item, n_users, n_items)
    elif item is not None:
        raise TypeError("build_adjacency(): with a UserItemCSR, pass no item / n_users / n_items")
    n_users, n_items = interactions.shape
    pattern = structure(interactions, self_loops)
    if weights is not None and tuple(weights.shape) != (interactions.nnz,):
        raise ValueError(f"build_adjacency(): weights must have shape ({interactions.nnz},), one "
                         f"per interaction, but got {tuple(weights.shape)}")
    learned = weights is not None and weights.requires_grad
    w = (torch.ones(interactions.nnz, dtype=torch.float64) if weights is None
         else weights if learned else weights.detach().cpu().double())
    val = normalised_values(pattern, n_users, n_items, w, norm, self_loops)
    val = val if learned else val.float()
    symmetric = norm == "sym"
    # A non-symmetric Â keeps its transpose for the backward SpMM, as a permutation of values.
    transpose = None if symmetric else csr_transpose(pattern.rowptr, pattern.col,
                                                     n_users + n_items)
    return Adjacency(pattern.rowptr, pattern.col, val, n_users, n_items, norm, bool(self_loops),
                     symmetric, transpose, interactions, weights, pattern)
