"""Small random interaction graphs and dense float64 references for the graph filters.

The references are written from the papers' definitions with dense numpy matrices, independently
of gnn.models.spectral / graph_filters: the SVD is numpy's, BSPM's ODEs are stepped stage by
stage (no polynomial algebra).
"""
import numpy as np

from gnn.data import UserItemCSR


def power_law_graph(n_users=41, n_items=57, seed=0, mean_degree=6.0, empty_users=(2, 7),
                    empty_items=(3, -1)):
    """(train UserItemCSR, dense 0/1 array): Zipf-like item popularity and user activity,
    odd sizes, and users / items without any interaction."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    popularity = popularity[rng.permutation(n_items)]
    popularity[list(empty_items)] = 0.0
    popularity /= popularity.sum()
    activity = 1.0 / np.arange(1, n_users + 1) ** 0.7
    activity = activity[rng.permutation(n_users)]
    degrees = np.maximum(1, np.round(activity / activity.mean() * mean_degree)).astype(int)
    dense = np.zeros((n_users, n_items))
    available = int((popularity > 0).sum())
    for u in range(n_users):
        if u in empty_users:
            continue
        items = rng.choice(n_items, size=min(degrees[u], available), replace=False, p=popularity)
        dense[u, items] = 1.0
    u, i = np.nonzero(dense)
    return UserItemCSR.from_pairs(u, i, n_users, n_items), dense


def split_graph(dense, seed=0, held_out=0.25):
    """(train, test) UserItemCSR of a dense 0/1 array, about ``held_out`` of the pairs in test."""
    u, i = np.nonzero(dense)
    test = np.random.default_rng(seed).random(u.size) < held_out
    shape = dense.shape
    return (UserItemCSR.from_pairs(u[~test], i[~test], *shape),
            UserItemCSR.from_pairs(u[test], i[test], *shape))


def _inv_sqrt(d):
    return np.where(d > 0, 1.0 / np.sqrt(np.where(d > 0, d, 1.0)), 0.0)


def normalized(R):
    """(R̃, item degrees) with R̃ = D_U^{-1/2} R D_I^{-1/2} (zero-degree nodes weigh 0)."""
    d_user, d_item = R.sum(1), R.sum(0)
    return _inv_sqrt(d_user)[:, None] * R * _inv_sqrt(d_item)[None, :], d_item


def top_right_singular(Rn, k):
    """(σ_1..σ_k, V_k) from numpy's full SVD."""
    _, sigma, vt = np.linalg.svd(Rn)
    return sigma[:k], vt[:k].T


def ideal_filter(R, k):
    """Ψ = D_I^{-1/2} V_k V_kᵀ D_I^{1/2}, dense n_items x n_items."""
    Rn, d_item = normalized(R)
    _, V = top_right_singular(Rn, k)
    return np.diag(_inv_sqrt(d_item)) @ V @ V.T @ np.diag(np.sqrt(d_item))


def gfcf_reference(R, alpha, k):
    """GF-CF scores R (P̃ + α Ψ), dense float64."""
    Rn, _ = normalized(R)
    return R @ (Rn.T @ Rn + alpha * ideal_filter(R, k))


def bspm_reference(R, beta, k, blur_time=1.0, blur_steps=1, sharpen_time=2.5, sharpen_steps=1,
                   solver="rk4", final_sharpening=True):
    """BSPM scores by stepping its three ODEs on dense matrices (Choi et al., SIGIR 2023)."""
    Rn, _ = normalized(R)
    P = Rn.T @ Rn
    ideal = R @ ideal_filter(R, k)       # IDL: one Euler step of length 1 of ds/dt = s(Ψ - I)
    blurred, tau = R.copy(), blur_time / blur_steps
    for _ in range(blur_steps):          # blurring: ds/dt = s (P̃ - I), Euler
        blurred = blurred + tau * (blurred @ P - blurred)
    s = beta * ideal + blurred if final_sharpening else blurred
    if sharpen_time > 0:
        f, h = (lambda x: -(x @ P)), sharpen_time / sharpen_steps
        for _ in range(sharpen_steps):   # sharpening: ds/dt = -s P̃
            if solver == "euler":
                s = s + h * f(s)
            else:                        # classical Runge-Kutta, four stages
                k1 = f(s)
                k2 = f(s + h / 2 * k1)
                k3 = f(s + h / 2 * k2)
                k4 = f(s + h * k3)
                s = s + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return s if final_sharpening else s + beta * ideal


def gapped_rank(R, low=3, min_gap=0.05):
    """A k >= low whose singular gap (σ_k - σ_{k+1}) / σ_k is at least ``min_gap`` (the ideal
    filter is only well defined when V_k is)."""
    Rn, _ = normalized(R)
    sigma = np.linalg.svd(Rn, compute_uv=False)
    for k in range(low, len(sigma) - 1):
        if sigma[k] > 0 and (sigma[k - 1] - sigma[k]) / sigma[k - 1] >= min_gap:
            return k
    raise AssertionError("no gapped rank in this graph")
