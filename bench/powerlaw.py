"""A seeded power-law bipartite interaction graph, for scaling curves of the kernels.

Real implicit-feedback data is skewed on both sides: a few items are very popular and a few
users very active, while most have a handful of interactions (Gowalla's rank–degree curves fall
like ``rank^-0.6``, MovieLens's like ``rank^-0.9 … -1.0``). This module draws interactions from
a bipartite Chung–Lu model with Zipf weights::

    P(user u) ∝ (rank_u + 1)^-user_exponent,   P(item i) ∝ (rank_i + 1)^-item_exponent

independently per interaction, collapses duplicates, and tops up until exactly ``nnz / 2``
distinct (user, item) pairs exist, so that the symmetric adjacency ``[[0, R], [Rᵀ, 0]]`` has
exactly ``nnz`` entries. Ids are shuffled (popularity is not sorted by id, as in real data).

The defaults (exponents 0.6 / 0.6, 42 % users) were fitted to Gowalla at its own N and nnz:
median degree 18 / 13 (Gowalla 16 / 12), top-1 % share of interactions 0.14 / 0.14
(0.10 / 0.13); the heaviest rows are ~3-5x heavier than Gowalla's (4.3k vs 0.8k users,
3.8k vs 1.4k items), which makes it a somewhat harder case for load balancing, not an easier one.

Standalone: numpy, plus ``gnn.build_adjacency`` for :func:`powerlaw_graph`.

    >>> from bench.powerlaw import powerlaw_graph        # from the repository root
    >>> adj = powerlaw_graph(100_000, 2_000_000, seed=0)  # N = 1e5 nodes, nnz = 2e6
    $ python bench/powerlaw.py 100000 2000000            # degree statistics
"""
from __future__ import annotations

import argparse
from typing import Tuple

import numpy as np

__all__ = ["powerlaw_interactions", "powerlaw_graph", "degree_summary"]


def _zipf_probabilities(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Zipf weights over ``n`` ids, assigned to a random permutation of the ids."""
    weights = np.arange(1, n + 1, dtype=np.float64) ** -float(exponent)
    weights /= weights.sum()
    return weights[rng.permutation(n)]


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """``np.unique(keys)`` by a sort and a neighbour comparison (numpy 2's hash-based unique is
    several times slower on tens of millions of int64 keys)."""
    keys = np.sort(keys)
    keep = np.ones(keys.size, dtype=bool)
    keep[1:] = keys[1:] != keys[:-1]
    return keys[keep]


def powerlaw_interactions(n_nodes: int, nnz: int, *, user_fraction: float = 0.42,
                          user_exponent: float = 0.6, item_exponent: float = 0.6,
                          seed: int = 0, max_rounds: int = 64
                          ) -> Tuple[np.ndarray, np.ndarray, int, int]:
    """Distinct (user, item) pairs whose bipartite adjacency has ``n_nodes`` nodes and ``nnz`` entries.

    Args:
        n_nodes: ``N = n_users + n_items``.
        nnz: entries of the symmetric adjacency (``2 ×`` the number of interactions; must be even).
        user_fraction: share of the nodes that are users (Gowalla: 0.42).
        user_exponent, item_exponent: Zipf exponents of user activity and item popularity.
        seed: the only source of randomness; equal arguments give equal graphs.
        max_rounds: top-up rounds before giving up (a graph too dense for its skew).

    Returns:
        ``(user, item, n_users, n_items)``: int64 arrays of ``nnz // 2`` distinct pairs, sorted
        by user then item.
    """
    if nnz % 2 or nnz <= 0:
        raise ValueError(f"powerlaw_interactions(): nnz must be positive and even, but got {nnz}")
    n_users = max(1, int(round(n_nodes * user_fraction)))
    n_items = n_nodes - n_users
    if n_items < 1:
        raise ValueError(f"powerlaw_interactions(): need at least one item, but got n_nodes={n_nodes}, "
                         f"user_fraction={user_fraction}")
    target = nnz // 2
    if target > 0.5 * n_users * n_items:
        raise ValueError(f"powerlaw_interactions(): {target} interactions is more than half of the "
                         f"{n_users} x {n_items} matrix; lower nnz or raise n_nodes")
    rng = np.random.default_rng(seed)
    p_user = _zipf_probabilities(n_users, user_exponent, rng)
    p_item = _zipf_probabilities(n_items, item_exponent, rng)
    keys = np.empty(0, dtype=np.int64)
    for _ in range(max_rounds):
        missing = target - keys.size
        if missing == 0:
            break
        draw = int(missing * 1.1) + 64
        u = rng.choice(n_users, size=draw, p=p_user)
        i = rng.choice(n_items, size=draw, p=p_item)
        new = np.setdiff1d(_sorted_unique(u * n_items + i), keys, assume_unique=True)
        if new.size > missing:  # keep a random subset, so no id range is favoured
            new = rng.choice(new, size=missing, replace=False)
        keys = np.sort(np.concatenate([keys, new]))  # disjoint: a union
    else:
        raise RuntimeError(f"powerlaw_interactions(): only {keys.size} of {target} distinct pairs "
                           f"after {max_rounds} rounds; the graph is too dense for its skew")
    return keys // n_items, keys % n_items, n_users, n_items


def powerlaw_graph(n_nodes: int, nnz: int, *, norm: str = "sym", self_loops: bool = False,
                   **kwargs):
    """The normalised adjacency (:class:`gnn.Adjacency`) of :func:`powerlaw_interactions`.

    ``nnz`` counts the entries before self loops (``self_loops=True`` adds ``n_nodes``).
    Extra keyword arguments go to :func:`powerlaw_interactions`.
    """
    from gnn import build_adjacency

    user, item, n_users, n_items = powerlaw_interactions(n_nodes, nnz, **kwargs)
    return build_adjacency(user, item, n_users, n_items, norm=norm, self_loops=self_loops)


def degree_summary(ids: np.ndarray, n: int) -> dict:
    """Mean, median, p99, max degree and the top-1 % share of ``ids`` over ``0..n-1``."""
    deg = np.sort(np.bincount(ids, minlength=n))[::-1]
    top = max(1, n // 100)
    return {"n": n, "mean": float(deg.mean()), "median": float(np.median(deg)),
            "p99": float(np.percentile(deg, 99)), "max": int(deg[0]),
            "zero": int((deg == 0).sum()), "top1%_share": float(deg[:top].sum() / max(1, deg.sum()))}


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n_nodes", type=int)
    parser.add_argument("nnz", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--user-exponent", type=float, default=0.6)
    parser.add_argument("--item-exponent", type=float, default=0.6)
    args = parser.parse_args()
    user, item, n_users, n_items = powerlaw_interactions(
        args.n_nodes, args.nnz, seed=args.seed, user_exponent=args.user_exponent,
        item_exponent=args.item_exponent)
    print(f"N={args.n_nodes} users={n_users} items={n_items} interactions={user.size} nnz={2 * user.size}")
    for name, ids, n in (("user", user, n_users), ("item", item, n_items)):
        print(name, {k: round(v, 3) if isinstance(v, float) else v
                     for k, v in degree_summary(ids, n).items()})


if __name__ == "__main__":
    _main()
