"""Full-ranking evaluation with the model split over the ranks: one process's numbers.

The users with held-out items are split evenly over the ranks (by id, not by who owns them, so
every rank scores its share even when one rank owns all users). Each rank fetches the final
embeddings of its users from their owners (:func:`~gnn.distributed.exchange.rows_plan`), gathers
the item embeddings in chunks (:func:`~gnn.distributed.exchange.gather_rows`), and runs the
library's :class:`gnn.evaluation.Evaluator` on its users. The evaluator averages over the users
it scored, so the ranks all-reduce ``mean · n_users`` and ``n_users`` and divide; item coverage
is the union of the ranks' listed items (all-reduced marks), over the number of items.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist

from gnn.distributed.exchange import exchange, gather_rows, rows_plan
from gnn.evaluation import Evaluator, metric_names, normalize_ks


class ShardedEvaluator:
    """One split's evaluator on one rank; call it with the rank's final embeddings (collective).

    Args:
        target, exclude, ks, chunk_size: as for :class:`gnn.evaluation.Evaluator`.
        part: the :class:`~gnn.distributed.partition.Partition`; rank: this rank.
    """

    def __init__(self, target, exclude, ks, chunk_size, part, rank: int, device):
        self.part, self.rank, self.device = part, rank, torch.device(device)
        users = np.flatnonzero(target.degrees() > 0)
        shares = np.array_split(users, part.world_size)
        self.users = [torch.from_numpy(s.astype(np.int64)).to(self.device) for s in shares]
        self.plan = rows_plan(self.users, part, rank)  # user u is node u
        self.ks = normalize_ks(ks)
        self.names = metric_names(self.ks)
        self.n_items = target.shape[1]
        self.evaluator = None
        if shares[rank].size:
            self.evaluator = Evaluator(target, exclude, ks=ks, chunk_size=chunk_size,
                                       device=self.device, users=shares[rank])

    @torch.no_grad()
    def __call__(self, final_rows: torch.Tensor) -> dict:
        part, (lo, _) = self.part, self.part.rows(self.rank)
        mine = self.users[self.rank]
        user_rows = exchange(final_rows.index_select(0, self.plan.send_index), self.plan)
        items = gather_rows(final_rows, lo, part.n_users, part.n_nodes,
                            world_size=part.world_size)
        sums = torch.zeros(len(self.names) + 1, dtype=torch.float64, device=self.device)
        covered = torch.zeros(len(self.ks), self.n_items, dtype=torch.bool, device=self.device)
        if self.evaluator is not None:
            items_t = items.t()
            metrics = self.evaluator.evaluate_scores(
                lambda cu: user_rows[torch.searchsorted(mine, cu)] @ items_t, covered=covered)
            n = metrics["n_users_evaluated"]
            sums[:-1] = torch.tensor([metrics[k] * n for k in self.names], dtype=torch.float64)
            sums[-1] = n
        marks = covered.to(torch.int32)
        if part.world_size > 1:
            dist.all_reduce(sums)
            dist.all_reduce(marks)
        total = float(sums[-1])
        out = {k: float(sums[j]) / total for j, k in enumerate(self.names)}
        coverage = ((marks > 0).sum(1).double() / self.n_items).tolist()
        out.update({f"coverage@{k}": coverage[j] for j, k in enumerate(self.ks)})
        out["n_users_evaluated"] = total
        return out
