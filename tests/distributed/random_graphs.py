"""Seeded random user-item graphs for the distributed tests (a helper, not a test module)."""
import numpy as np

from gnn import build_adjacency


def random_adjacency(seed, n_users=57, n_items=83, density=0.08, skew=True, **kw):
    """Random interactions with power-law-ish degrees and a few isolated users and items."""
    rng = np.random.default_rng(seed)
    p_user = rng.pareto(1.5, n_users) + 0.1 if skew else np.ones(n_users)
    p_item = rng.pareto(1.5, n_items) + 0.1 if skew else np.ones(n_items)
    if skew:
        p_user[rng.choice(n_users, 3, replace=False)] = 0  # isolated
        p_item[rng.choice(n_items, 3, replace=False)] = 0
    prob = np.minimum(1.0, density * np.outer(p_user, p_item) / np.outer(p_user, p_item).mean())
    user, item = np.nonzero(rng.random((n_users, n_items)) < prob)
    return build_adjacency(user, item, n_users, n_items, **kw)
