"""Per-user item lists in CSR form: ``indices[indptr[u]:indptr[u+1]]`` are the items of user ``u``.

Used by evaluation (train / validation / test items per user) and by anything else that needs
"the items of user u" without a dense matrix. numpy and torch only.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["csr_from_pairs", "check_csr"]


def _as_int_numpy(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D, but got shape {tuple(x.shape)}")
    if x.size and not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, but got dtype {x.dtype}")
    return x.astype(np.int64, copy=False)


def csr_from_pairs(user, item, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR of the (user, item) pairs: ``(indptr, indices)``, both int64 numpy arrays.

    ``indptr`` has length ``n_users + 1``; each user's items are sorted ascending and duplicates
    are collapsed. ``user`` and ``item`` are equal-length 1-D integer arrays (numpy or torch);
    users must lie in ``[0, n_users)``, items must be ``>= 0``.

        >>> indptr, indices = csr_from_pairs([1, 0, 1, 1], [3, 2, 0, 3], n_users=3)
        >>> indptr.tolist(), indices.tolist()
        ([0, 1, 3, 3], [2, 0, 3])
    """
    user = _as_int_numpy(user, "user")
    item = _as_int_numpy(item, "item")
    n_users = int(n_users)
    if n_users < 0:
        raise ValueError(f"n_users must be >= 0, but got {n_users}")
    if user.shape != item.shape:
        raise ValueError(f"user and item must have the same length, but got {user.size} and {item.size}")
    if user.size:
        if user.min() < 0 or user.max() >= n_users:
            raise ValueError(
                f"user ids must lie in [0, {n_users}), but got range [{user.min()}, {user.max()}]")
        if item.min() < 0:
            raise ValueError(f"item ids must be >= 0, but got {item.min()}")
    order = np.lexsort((item, user))           # by user, then item
    user, item = user[order], item[order]
    if user.size:
        keep = np.ones(user.size, dtype=bool)
        keep[1:] = (user[1:] != user[:-1]) | (item[1:] != item[:-1])
        user, item = user[keep], item[keep]
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(user, minlength=n_users), out=indptr[1:])
    return indptr, item.astype(np.int64, copy=False)


def check_csr(indptr, indices, n_rows: int, n_cols: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate a CSR pair and return it as int64 numpy arrays.

    Raises ``ValueError`` naming ``name`` unless ``indptr`` is 1-D of length ``n_rows + 1``,
    starts at 0, is non-decreasing and ends at ``len(indices)``, and every index lies in
    ``[0, n_cols)``.
    """
    indptr = _as_int_numpy(indptr, f"{name} indptr")
    indices = _as_int_numpy(indices, f"{name} indices")
    if indptr.size != n_rows + 1:
        raise ValueError(
            f"{name} indptr must have length n_users + 1 = {n_rows + 1}, but got {indptr.size}")
    if indptr[0] != 0:
        raise ValueError(f"{name} indptr must start at 0, but got {indptr[0]}")
    if np.any(np.diff(indptr) < 0):
        raise ValueError(f"{name} indptr must be non-decreasing")
    if indptr[-1] != indices.size:
        raise ValueError(
            f"{name} indptr[-1] must equal len(indices) = {indices.size}, but got {indptr[-1]}")
    if indices.size and (indices.min() < 0 or indices.max() >= n_cols):
        raise ValueError(
            f"{name} indices must lie in [0, n_items) = [0, {n_cols}), "
            f"but got range [{indices.min()}, {indices.max()}]")
    return indptr, indices
