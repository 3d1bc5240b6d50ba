"""1-D row partition of the adjacency over P ranks (docs/DISTRIBUTED.md, docs/DESIGN.md §7).

Nodes (users, then items: the adjacency's own order) are cut into P contiguous blocks
``R_r = [lo_r, hi_r)`` balanced by nonzeros of Â, not by node count: the propagation, which
dominates a step, costs O(nnz) per layer. Rank r holds the rows ``Â[R_r, :]`` as a local CSR
whose columns index a buffer of its own rows and its *halo* ``H_r`` (the columns of its rows
that other ranks own)::

    buffer = [E[H_r below lo_r]; E[R_r]; E[H_r above hi_r]]

Halo ids are sorted, so a column map that is monotone keeps each row's columns sorted (as in the
global CSR) and the entries of the local CSR are exactly the global entries
``rowptr[lo_r] .. rowptr[hi_r]`` in their global order: a mask drawn over the global entries
(node dropout) applies to the local ones by slicing. The halo arrives grouped by owner rank in
rank order, which is the same sorted order.

Nothing here communicates: :func:`nnz_balanced_bounds` and :func:`local_graph` are pure
functions of the CSR, also used by the partition report
(``python -m tools.partition_report``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np
import torch

from gnn.kernels import csr_transpose


def nnz_balanced_bounds(rowptr, world_size: int) -> List[int]:
    """Block boundaries ``[0 = b_0 < b_1 < ... < b_P = N]`` with ``rowptr[b_r] ≈ r · nnz / P``.

    Each boundary is the row boundary nearest to its target, then moved (when needed) so that
    every block keeps at least one node. The nnz of a block is within one row's nnz of
    ``nnz / P`` on each side, so graphs whose heaviest row is under a tenth of ``nnz / P`` are
    balanced to 10 %.
    """
    rowptr = np.asarray(rowptr.cpu() if isinstance(rowptr, torch.Tensor) else rowptr, np.int64)
    n = rowptr.size - 1
    if isinstance(world_size, bool) or not isinstance(world_size, (int, np.integer)) \
            or world_size < 1:
        raise ValueError(f"world size must be a positive int, but got {world_size!r}")
    if world_size > n:
        raise ValueError(f"world size {world_size} is larger than the number of nodes of the "
                         f"graph ({n}: users + items): every rank must own at least one node; "
                         f"start at most {n} processes")
    nnz = int(rowptr[-1])
    targets = np.arange(1, world_size) * (nnz / world_size)
    right = np.searchsorted(rowptr, targets, side="left").clip(0, n)  # first row at/after
    left = (right - 1).clip(0, n)
    nearer_left = np.abs(rowptr[left] - targets) <= np.abs(rowptr[right] - targets)
    cuts = np.where(nearer_left, left, right)
    bounds = [0]
    for r, cut in enumerate(cuts.tolist(), start=1):
        bounds.append(int(min(max(cut, bounds[-1] + 1), n - (world_size - r))))
    bounds.append(n)
    return bounds


@dataclass(frozen=True)
class Partition:
    """Which rank owns which nodes: rank r owns ``[bounds[r], bounds[r + 1])``."""

    bounds: Tuple[int, ...]
    n_users: int
    n_items: int

    @classmethod
    def of(cls, adj, world_size: int) -> "Partition":
        """The nnz-balanced partition of an :class:`gnn.Adjacency` (or alike)."""
        return cls(tuple(nnz_balanced_bounds(adj.rowptr, world_size)), adj.n_users, adj.n_items)

    @property
    def world_size(self) -> int:
        return len(self.bounds) - 1

    @property
    def n_nodes(self) -> int:
        return self.n_users + self.n_items

    def rows(self, rank: int) -> Tuple[int, int]:
        """``(lo, hi)``: the node range of ``rank``."""
        return self.bounds[rank], self.bounds[rank + 1]

    def owner(self, nodes: torch.Tensor) -> torch.Tensor:
        """The rank owning each node id (same device as ``nodes``)."""
        inner = torch.tensor(self.bounds[1:-1], dtype=nodes.dtype, device=nodes.device)
        return torch.searchsorted(inner, nodes, right=True)

    def counts_by_owner(self, sorted_nodes: torch.Tensor) -> List[int]:
        """How many of the (sorted) node ids each rank owns."""
        edges = torch.tensor(self.bounds, dtype=sorted_nodes.dtype, device=sorted_nodes.device)
        pos = torch.searchsorted(sorted_nodes, edges).tolist()
        return [pos[r + 1] - pos[r] for r in range(self.world_size)]


@dataclass
class LocalGraph:
    """Rank r's rows of Â with columns into its buffer (module docstring).

    Attributes:
        lo, hi: the rank's node range; ``n_rows = hi - lo``.
        rowptr: int64 ``(n_rows + 1,)``; col: int32 into the buffer; val: float32.
        entries: ``(start, end)``, the global CSR entries these are.
        halo: int64, sorted global ids of the buffer's remote rows; ``n_below`` of them lie
            below ``lo``.
        transpose: ``(rowptr_t, col_t, perm_t)`` of this rectangular block, for the backward.
    """

    lo: int
    hi: int
    rowptr: torch.Tensor
    col: torch.Tensor
    val: torch.Tensor
    entries: Tuple[int, int]
    halo: torch.Tensor
    n_below: int
    transpose: Tuple[torch.Tensor, torch.Tensor, torch.Tensor]

    @property
    def n_rows(self) -> int:
        return self.hi - self.lo

    @property
    def n_buffer(self) -> int:
        return self.n_rows + int(self.halo.numel())

    @property
    def nnz(self) -> int:
        return int(self.col.numel())

    def to(self, device) -> "LocalGraph":
        move = lambda t: t.to(device)  # noqa: E731
        return LocalGraph(self.lo, self.hi, move(self.rowptr), move(self.col), move(self.val),
                          self.entries, move(self.halo), self.n_below,
                          tuple(move(t) for t in self.transpose))

    def assemble(self, own: torch.Tensor, halo_rows: torch.Tensor) -> torch.Tensor:
        """The buffer ``[halo below; own; halo above]`` from the rank's rows and its halo's."""
        return torch.cat([halo_rows[: self.n_below], own, halo_rows[self.n_below:]])


def halo_of(rowptr: torch.Tensor, col: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """Sorted unique columns of rows ``[lo, hi)`` outside ``[lo, hi)`` (int64)."""
    cols = col[int(rowptr[lo]): int(rowptr[hi])].long()
    return torch.unique(cols[(cols < lo) | (cols >= hi)], sorted=True)


def local_graph(adj, part: Partition, rank: int) -> LocalGraph:
    """Rank ``rank``'s :class:`LocalGraph` of ``adj`` (host tensors)."""
    lo, hi = part.rows(rank)
    rowptr, col = adj.rowptr.cpu(), adj.col.cpu()
    start, end = int(rowptr[lo]), int(rowptr[hi])
    halo = halo_of(rowptr, col, lo, hi)
    n_below = int(torch.searchsorted(halo, torch.tensor(lo)).item())
    buffer_ids = torch.cat([halo[:n_below], torch.arange(lo, hi), halo[n_below:]])
    local_col = torch.searchsorted(buffer_ids, col[start:end].long()).to(torch.int32)
    local_rowptr = rowptr[lo: hi + 1] - start
    transpose = csr_transpose(local_rowptr, local_col, int(buffer_ids.numel()))
    return LocalGraph(lo, hi, local_rowptr.contiguous(), local_col,
                      adj.val.cpu()[start:end].clone(), (start, end), halo, n_below, transpose)


def partition_stats(rowptr, col, bounds: Sequence[int]) -> List[dict]:
    """Per rank: rows, nnz, halo rows (received per layer) and rows sent per layer."""
    rowptr = torch.as_tensor(rowptr)
    col = torch.as_tensor(col)
    sent = np.zeros(len(bounds) - 1, dtype=np.int64)
    stats = []
    for r in range(len(bounds) - 1):
        lo, hi = bounds[r], bounds[r + 1]
        halo = halo_of(rowptr, col, lo, hi)
        owners = np.searchsorted(np.asarray(bounds[1:-1]), halo.numpy(), side="right")
        sent += np.bincount(owners, minlength=len(bounds) - 1)
        stats.append({"rank": r, "rows": hi - lo, "nnz": int(rowptr[hi] - rowptr[lo]),
                      "halo_rows": int(halo.numel())})
    for r, s in enumerate(stats):
        s["sent_rows"] = int(sent[r])
    return stats
