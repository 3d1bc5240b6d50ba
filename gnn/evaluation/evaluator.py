r"""Full-ranking evaluation in user chunks (CPU or CUDA): the one evaluator of the library.

An :class:`Evaluator` is built once per split: it uploads the exclusion CSRs, the sorted test
keys and the users to evaluate to the device, and then scores any number of models. For each
chunk of ``chunk_size`` users, ``scores = user_emb[chunk] @ item_emb.T`` (or any score
function's block) is formed, excluded items are set to ``-inf`` with one vectorised scatter, one
``topk`` with the largest K serves every K, test membership of the top-K items is a binary
search over the sorted keys ``u · n_items + i``, and per-user metrics are summed on the device
(or kept, one value per user, with ``per_user=True``: for paired tests between two models,
:func:`gnn.evaluation.paired_test`). The items that appear in any list give item coverage.
Memory is ``O(chunk_size · n_items)`` whatever the number of users.

Metrics, tie rule (equal scores: lower item id first) and edge cases are exactly those of the
dense reference :func:`gnn.evaluation.reference.ranking_metrics` (docs/DESIGN.md §3).
``torch.topk`` does not order ties deterministically, so ties are repaired exactly: the K
selected entries are re-sorted by (score desc, item id asc), and a row where items tied with the
K-th score were left out is re-ranked by a full stable sort (rare with real-valued scores).
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import torch

from gnn.data import UserItemCSR
from gnn.evaluation.ks import METRICS, normalize_ks

__all__ = ["Evaluator", "evaluate_ranking"]


class Evaluator:
    """Recall / precision / NDCG / hit rate / MRR / MAP and item coverage at each K for one
    split, built once.

    Args:
        target: each user's held-out items (:class:`gnn.data.UserItemCSR`); users without any
            are skipped.
        exclude: CSRs of the items removed from every ranking (training items; on test also
            validation items), same shape as ``target``.
        ks: an int or a sequence of positive ints (default ``(20,)``).
        chunk_size: users scored at once (default 1024).
        device: where scoring happens.
        users: optional ids of the users to evaluate (those without held-out items skipped).
    """

    def __init__(self, target: UserItemCSR, exclude: Sequence[UserItemCSR] = (), ks=(20,),
                 chunk_size: int = 1024, device="cpu", users=None):
        self.ks = normalize_ks(ks)
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size <= 0:
            raise ValueError(f"chunk_size must be a positive int, but got {chunk_size!r}")
        if not isinstance(target, UserItemCSR):
            raise TypeError(f"target must be a gnn.data.UserItemCSR, but got {type(target).__name__}")
        if isinstance(exclude, UserItemCSR):
            exclude = [exclude]
        for j, csr in enumerate(exclude):
            if not isinstance(csr, UserItemCSR) or csr.shape != target.shape:
                raise ValueError(f"exclude[{j}] must be a UserItemCSR of shape {target.shape}, "
                                 f"but got {csr!r}")
        self.n_users, self.n_items = target.shape
        self.chunk_size, self.device = int(chunk_size), torch.device(device)
        self.exclude = list(exclude)
        has_target = target.degrees() > 0
        if users is None:
            eval_users = np.flatnonzero(has_target)
        else:
            if isinstance(users, torch.Tensor):
                users = users.detach().cpu().numpy()
            users = np.unique(np.asarray(users, dtype=np.int64).reshape(-1))
            if users.size and (users[0] < 0 or users[-1] >= self.n_users):
                raise ValueError(f"users must lie in [0, {self.n_users}), but got range "
                                 f"[{users[0]}, {users[-1]}]")
            eval_users = users[has_target[users]]
        if eval_users.size == 0:
            raise ValueError("no user to evaluate: none of the requested users has a held-out item")
        up = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(self.device)  # noqa: E731
        self.users = up(eval_users)
        # Held-out items as sorted unique keys u·n_items + i (UserItemCSR rows are sorted, unique).
        self.target_count = up(target.degrees())
        self.target_keys = up(target.users() * self.n_items + target.indices)
        kbig = max(self.ks)
        self.discount = 1.0 / torch.log2(torch.arange(2, kbig + 2, device=self.device,
                                                      dtype=torch.float64))
        self.ideal = torch.cumsum(self.discount, 0)

    @property
    def n_users_evaluated(self) -> int:
        return int(self.users.numel())

    @torch.no_grad()
    def evaluate(self, user_emb: torch.Tensor, item_emb: torch.Tensor, *,
                 per_user: bool = False) -> dict:
        """Metrics of the scores ``user_emb @ item_emb.T`` (same device, floating dtype);
        ``per_user``: as in :meth:`evaluate_scores`."""
        if user_emb.ndim != 2 or item_emb.ndim != 2 or user_emb.shape[1] != item_emb.shape[1]:
            raise ValueError(f"user_emb and item_emb must be 2-D with one embedding size, but got "
                             f"shapes {tuple(user_emb.shape)} and {tuple(item_emb.shape)}")
        if (user_emb.shape[0], item_emb.shape[0]) != (self.n_users, self.n_items):
            raise ValueError(f"expected {self.n_users} user and {self.n_items} item embeddings, "
                             f"but got {user_emb.shape[0]} and {item_emb.shape[0]}")
        if user_emb.dtype != item_emb.dtype or not user_emb.is_floating_point():
            raise ValueError(f"user_emb and item_emb must share a floating dtype, but got "
                             f"{user_emb.dtype} and {item_emb.dtype}")
        user_emb, item_t = user_emb.to(self.device), item_emb.to(self.device).t()
        return self.evaluate_scores(lambda cu: user_emb[cu] @ item_t, per_user=per_user)

    __call__ = evaluate

    @torch.no_grad()
    def evaluate_scores(self, score_fn: Callable, *, per_user: bool = False,
                        covered: Optional[torch.Tensor] = None) -> dict:
        """Metrics of any scorer: ``score_fn(user_ids) -> (len(user_ids), n_items)`` scores.

        ``score_fn`` receives a LongTensor of user ids on the evaluator's device and returns
        their dense scores (a tensor, or a numpy array moved to the device; the block is then
        modified in place). It is called ``chunk_size`` users at a time, so a model that scores
        without embeddings (ItemKNN's ``R · Sᵀ``) gets the same bounded memory and metrics.

        Returns the means ``{"recall@K", "precision@K", "ndcg@K", "hit@K", "mrr@K", "map@K"}``,
        ``"coverage@K"`` (the share of all items in at least one user's list) and
        ``"n_users_evaluated"``; with ``per_user=True`` instead one float64 numpy array per
        metric, aligned with ``"user"`` (the evaluated user ids, ascending). ``covered``: a
        ``(len(ks), n_items)`` bool tensor on the device in which the listed items are marked
        (for a caller that combines the lists of several evaluators: gnn.distributed).
        """
        ks, n_items = self.ks, self.n_items
        kmax = min(max(ks), n_items)
        sums = torch.zeros(len(ks), len(METRICS), dtype=torch.float64, device=self.device)
        if covered is None:
            covered = torch.zeros(len(ks), n_items, dtype=torch.bool, device=self.device)
        elif covered.shape != (len(ks), n_items) or covered.dtype != torch.bool:
            raise ValueError(f"covered must be a ({len(ks)}, {n_items}) bool tensor, but got "
                             f"{tuple(covered.shape)} {covered.dtype}")
        rows = []
        for lo in range(0, self.users.numel(), self.chunk_size):
            cu = self.users[lo:lo + self.chunk_size]
            values = self._chunk(cu, score_fn(cu), kmax, covered)
            if per_user:
                rows.append(values.cpu())
            else:
                sums += values.sum(0)
        if per_user:
            table = torch.cat(rows).numpy()
            out = {"user": self.users.cpu().numpy()}
            out.update({f"{name}@{k}": table[:, j, m]
                        for j, k in enumerate(ks) for m, name in enumerate(METRICS)})
            return out
        means = (sums / self.users.numel()).tolist()
        out = {f"{name}@{k}": float(means[j][m])
               for j, k in enumerate(ks) for m, name in enumerate(METRICS)}
        coverage = (covered.sum(1).double() / n_items).tolist()
        out.update({f"coverage@{k}": coverage[j] for j, k in enumerate(ks)})
        out["n_users_evaluated"] = self.n_users_evaluated
        return out

    def _chunk(self, cu, scores, kmax: int, covered) -> torch.Tensor:
        """Per-user metrics of one chunk, ``(len(cu), len(ks), len(METRICS))`` float64; marks
        the listed items in ``covered`` (one row per K)."""
        n_items, neg_inf = self.n_items, float("-inf")
        s = torch.as_tensor(scores, device=self.device)
        if not s.is_floating_point():  # integer scores: float64 holds them and -inf
            s = s.to(torch.float64)
        if s.shape != (cu.numel(), n_items):
            raise ValueError(f"the scores of {cu.numel()} users must have shape "
                             f"({cu.numel()}, {n_items}), but got {tuple(s.shape)}")
        lo_hi = torch.aminmax(s)  # one pass; NaN propagates
        if not (torch.isfinite(lo_hi.min) & torch.isfinite(lo_hi.max)):
            raise ValueError("the scores contain NaN or inf; ranking metrics need finite scores")
        for csr in self.exclude:
            r, c = csr.entries_of(cu, self.device)
            s[r, c] = neg_inf
        top, vals = _top_k_exact(s, kmax)
        del s
        # rel = [top item is held out]: binary search of the key u·n_items + i
        query = cu[:, None] * n_items + top
        keys = self.target_keys
        pos = torch.searchsorted(keys, query).clamp_(max=max(keys.numel() - 1, 0))
        listed = vals > neg_inf
        rel = ((keys[pos] == query) & listed).to(torch.float64)
        n_target = self.target_count[cu].to(torch.float64)
        ranks = torch.arange(1, kmax + 1, device=self.device, dtype=torch.float64)
        precision_at = torch.cumsum(rel, 1) / ranks  # precision at each rank r
        out = torch.empty(cu.numel(), len(self.ks), len(METRICS), dtype=torch.float64,
                          device=self.device)
        for j, k in enumerate(self.ks):
            kk = min(k, kmax)
            r = rel[:, :kk]
            hits = r.sum(1)
            dcg = r @ self.discount[:kk]
            idcg = self.ideal[torch.clamp(n_target, max=k).long() - 1]
            out[:, j, 0] = hits / n_target
            out[:, j, 1] = hits / k
            out[:, j, 2] = dcg / idcg
            out[:, j, 3] = (hits > 0).to(torch.float64)
            out[:, j, 4] = (r / ranks[:kk]).amax(1)  # 1 / rank of the first hit, 0 without
            out[:, j, 5] = (r * precision_at[:, :kk]).sum(1) / torch.clamp(n_target, max=k)
            covered[j, top[:, :kk][listed[:, :kk]]] = True
        return out


def _top_k_exact(s: torch.Tensor, kmax: int):
    """``(items, scores)`` of the ``kmax`` best entries of each row, ordered by (score desc,
    item id asc) exactly, also when ties straddle the K-th place."""
    neg_inf = float("-inf")
    n_items = s.shape[1]
    # One extra entry tells whether the K-th score is tied with an item left out.
    vals, top = torch.topk(s, min(kmax + 1, n_items), dim=1)  # sorted desc, ties arbitrary
    if vals.shape[1] > kmax:
        boundary = (vals[:, kmax] == vals[:, kmax - 1]) & (vals[:, kmax - 1] > neg_inf)
        vals, top = vals[:, :kmax], top[:, :kmax]
        if boundary.any():
            rows = boundary.nonzero()[:, 0]
            v2, t2 = torch.sort(s[rows], dim=1, descending=True, stable=True)
            vals[rows], top[rows] = v2[:, :kmax], t2[:, :kmax]
    # Order the selected items by (score desc, id asc): sort by id, then stable by score.
    top, perm = torch.sort(top, dim=1)
    vals = torch.gather(vals, 1, perm)
    vals, perm = torch.sort(vals, dim=1, descending=True, stable=True)
    return torch.gather(top, 1, perm), vals


def evaluate_ranking(user_emb, item_emb, target: UserItemCSR,
                     exclude: Sequence[UserItemCSR] = (), ks=(20,), chunk_size: int = 1024,
                     users: Optional[Sequence[int]] = None) -> dict:
    r"""One-shot :class:`Evaluator`: metrics of ``user_emb @ item_emb.T`` against ``target``.

    .. math:: \mathrm{NDCG@K} = \frac{\sum_{r\le K} rel_r/\log_2(r+1)}{\sum_{r\le\min(K,|T_u|)} 1/\log_2(r+1)}

    Returns every metric of :meth:`Evaluator.evaluate_scores` for every K and
    ``"n_users_evaluated"``. Build an :class:`Evaluator` instead to evaluate repeatedly.
    """
    user_emb, item_emb = torch.as_tensor(user_emb), torch.as_tensor(item_emb)
    if user_emb.device != item_emb.device:
        raise ValueError(f"user_emb and item_emb must be on the same device, but got "
                         f"{user_emb.device} and {item_emb.device}")
    evaluator = Evaluator(target, exclude, ks=ks, chunk_size=chunk_size, device=user_emb.device,
                          users=users)
    return evaluator.evaluate(user_emb, item_emb)
