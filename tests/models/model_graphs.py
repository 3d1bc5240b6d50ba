"""Helpers of the model tests: tiny graphs and float64 re-implementations written with scipy and
numpy from the math of docs/DESIGN.md §2 (independent of the kernels)."""
import numpy as np
import scipy.sparse as sp
import torch

from gnn import build_adjacency

N_USERS, N_ITEMS = 13, 17


def small_pairs(seed=0, n_users=N_USERS, n_items=N_ITEMS, n_pairs=60):
    """(user, item) with popularity skew; the last user and the last item have no interaction."""
    rng = np.random.default_rng(seed)
    user = rng.integers(0, n_users - 1, n_pairs)
    item = np.minimum(rng.zipf(1.6, n_pairs) - 1, n_items - 2)
    return user, item


def small_graph(seed=0, n_users=N_USERS, n_items=N_ITEMS, **options):
    """(user, item, adjacency) of :func:`small_pairs`."""
    user, item = small_pairs(seed, n_users, n_items)
    return user, item, build_adjacency(user, item, n_users, n_items, **options)


def leaky(x, slope=0.2):
    return np.where(x > 0, x, slope * x)


def rownorm(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def layer0(model) -> np.ndarray:
    """E^0 of all nodes (users, then items) in float64."""
    return torch.cat([model.user_embedding.weight, model.item_embedding.weight]).double().detach().numpy()


def ngcf_reference(model, a: sp.spmatrix, self_loop: bool) -> np.ndarray:
    """E^0 ‖ norm(E^1) ‖ … with S = a E and
    E^l = LeakyReLU((S + [self_loop] E) W1 + (S ⊙ E) W2 + b) (the kernel's contract, §2, §4);
    ``a`` is the propagation matrix, with its self-loops when it has them."""
    x = layer0(model)
    outs = [x]
    for w1, w2, b in zip(model.w1, model.w2, model.bias):
        w1, w2, b = (t.double().detach().numpy() for t in (w1, w2, b))
        s = a @ x
        x = leaky((s + x if self_loop else s) @ w1 + (s * x) @ w2 + b, model.negative_slope)
        outs.append(rownorm(x))
    return np.concatenate(outs, axis=1)


def lightgcn_reference(model, a: sp.spmatrix, alpha) -> np.ndarray:
    """Σ_k α_k Â^k E^0 in float64."""
    layers = [layer0(model)]
    for _ in range(len(alpha) - 1):
        layers.append(a @ layers[-1])
    return sum(w * x for w, x in zip(alpha, layers))


def final_embeddings(model) -> np.ndarray:
    """The model's inference embeddings, users then items."""
    users, items = model.embeddings()
    return torch.cat([users, items]).double().numpy()


def tiny_dataset(folder, n_users=12, n_items=15, per_user=7, seed=0):
    """A split dataset (train / valid / test) loaded from a small delimited file in ``folder``,
    with original ids that differ from the indices (users 101.., items 1001..)."""
    from gnn.data import load_dataset

    rng = np.random.default_rng(seed)
    lines = ["user,item"]
    for u in range(n_users):
        for i in rng.choice(n_items, size=per_user, replace=False):
            lines.append(f"{101 + u},{1001 + i}")
    path = folder / "ratings.csv"
    path.write_text("\n".join(lines) + "\n")
    return load_dataset(str(path), split="random", seed=seed)
