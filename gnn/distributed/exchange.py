"""Moving node rows between ranks: plans, a differentiable all-to-all, gathers.

An :class:`ExchangePlan` says which of a rank's rows go to which rank and how many it receives
from each. Two kinds are built:

* the *halo* plan of the propagation (:func:`halo_plan`), once at start-up: each rank asks the
  owners for its halo rows (two ``all_to_all_single`` calls: counts, then ids);
* *row* plans (:func:`rows_plan`) for sets of nodes every rank knows already (the global BPR
  batch, the evaluation users): built locally, no communication.

:func:`exchange` is one ``all_to_all_single`` whose backward is the transposed exchange: the
gradient of every received row goes back to its owner (autograd then adds it to the row it was
read from, ``index_select``'s backward). Every rank runs the same sequence of exchanges, forward
and backward, so the collectives pair up. :data:`TRAFFIC` counts the bytes sent to other ranks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch
import torch.distributed as dist


@dataclass
class ExchangePlan:
    """``send_index``: local rows to send, grouped by destination rank (``send_counts[d]`` rows
    for rank d, in rank order); ``recv_counts[s]`` rows arrive from rank s, in rank order."""

    rank: int
    send_index: torch.Tensor
    send_counts: List[int]
    recv_counts: List[int]

    @property
    def n_recv(self) -> int:
        return sum(self.recv_counts)


class Traffic:
    """Bytes this process sent to other ranks through :func:`exchange` (forward and backward)."""

    def __init__(self):
        self.bytes_sent = 0

    def reset(self) -> None:
        self.bytes_sent = 0


TRAFFIC = Traffic()


def _all_to_all(send: torch.Tensor, recv_counts, send_counts, group) -> torch.Tensor:
    out = send.new_empty((sum(recv_counts),) + tuple(send.shape[1:]))
    if len(send_counts) == 1:  # one process: nothing to move
        out.copy_(send)
        return out
    row_bytes = send[0:1].numel() * send.element_size() if send.dim() > 1 else send.element_size()
    rank = dist.get_rank(group)
    TRAFFIC.bytes_sent += (sum(send_counts) - send_counts[rank]) * row_bytes
    dist.all_to_all_single(out, send.contiguous(), list(recv_counts), list(send_counts),
                           group=group)
    return out


class _Exchange(torch.autograd.Function):
    @staticmethod
    def forward(ctx, send, plan, group):
        ctx.plan, ctx.group = plan, group
        return _all_to_all(send, plan.recv_counts, plan.send_counts, group)

    @staticmethod
    def backward(ctx, grad):
        plan = ctx.plan
        return _all_to_all(grad, plan.send_counts, plan.recv_counts, ctx.group), None, None


def exchange(send: torch.Tensor, plan: ExchangePlan, group=None) -> torch.Tensor:
    """Send ``send`` (rows already in ``plan.send_index`` order) and return the received rows,
    grouped by source rank; differentiable (the backward is the transposed exchange)."""
    return _Exchange.apply(send, plan, group)


def halo_plan(halo: torch.Tensor, part, rank: int, group=None) -> ExchangePlan:
    """The plan that brings each rank its sorted ``halo`` ids from their owners (collective)."""
    device = halo.device
    recv_counts = part.counts_by_owner(halo)
    want = torch.tensor(recv_counts, dtype=torch.int64, device=device)
    asked = torch.empty_like(want)
    world = part.world_size
    if world == 1:
        asked.copy_(want)
    else:
        dist.all_to_all_single(asked, want, group=group)
    send_counts = asked.tolist()
    requested = halo.new_empty(sum(send_counts))
    if world == 1:
        requested.copy_(halo)
    else:
        dist.all_to_all_single(requested, halo.contiguous(), send_counts, recv_counts,
                               group=group)
    lo, hi = part.rows(rank)
    if requested.numel() and not bool(((requested >= lo) & (requested < hi)).all()):
        raise RuntimeError(f"rank {rank}: asked for rows it does not own (the ranks disagree "
                           f"on the partition)")
    return ExchangePlan(rank, requested - lo, send_counts, recv_counts)


def rows_plan(wanted: Sequence[torch.Tensor], part, rank: int) -> ExchangePlan:
    """The plan that brings rank d the sorted unique node ids ``wanted[d]`` (every rank passes
    the same list; no communication)."""
    lo, hi = part.rows(rank)
    pieces, send_counts = [], []
    for ids in wanted:
        a, b = torch.searchsorted(ids, torch.tensor([lo, hi], dtype=ids.dtype,
                                                    device=ids.device)).tolist()
        pieces.append(ids[a:b] - lo)
        send_counts.append(b - a)
    recv_counts = part.counts_by_owner(wanted[rank])
    return ExchangePlan(rank, torch.cat(pieces), send_counts, recv_counts)


def gather_rows(own: torch.Tensor, lo: int, start: int, stop: int, group=None,
                chunk_rows: int = 1 << 16, world_size: Optional[int] = None) -> torch.Tensor:
    """Rows ``[start, stop)`` of the global table whose rows ``[lo, lo + len(own))`` this rank
    holds, on every rank (collective, no autograd).

    Sent ``chunk_rows`` rows at a time as a sum of zero-padded blocks (``all_reduce``; adding
    zeros is exact), so no buffer larger than one chunk is ever sent.
    """
    world = dist.get_world_size(group) if world_size is None else world_size
    hi = lo + own.shape[0]
    out = own.new_empty((stop - start,) + tuple(own.shape[1:]))
    for a in range(start, stop, chunk_rows):
        b = min(a + chunk_rows, stop)
        block = out[a - start: b - start]
        block.zero_()
        s, e = max(a, lo), min(b, hi)
        if s < e:
            block[s - a: e - a] = own[s - lo: e - lo]
        if world > 1:
            dist.all_reduce(block, group=group)
    return out
