"""Each user's items as CSR: the one representation of a set of (user, item) interactions.

``indices[indptr[u]:indptr[u + 1]]`` are the items of user ``u``, sorted ascending and unique.
A split dataset builds one of these per part (train / valid / test, see
:class:`gnn.data.SplitDataset`), and everything downstream takes that object: the adjacency,
the samplers, the evaluator, ItemKNN and the saved model. Memory is O(n_users + nnz).

numpy for the host copy; :meth:`UserItemCSR.to` keeps one torch copy per device, so a training
run uploads its interactions once.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

__all__ = ["UserItemCSR"]


def _as_int_array(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D, but got shape {tuple(x.shape)}")
    if x.size and not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"{name} must hold integer ids, but got dtype {x.dtype}")
    return x.astype(np.int64, copy=False)


class UserItemCSR:
    """A set of (user, item) pairs over ``n_users x n_items``, as CSR with sorted unique rows.

    Build it with :meth:`from_pairs` (validates, sorts, collapses duplicates) or
    :meth:`from_csr` (validates a CSR made elsewhere). Instances are immutable by convention:
    the arrays are marked read-only.

    Attributes:
        indptr: int64 ``(n_users + 1,)`` row offsets.
        indices: int64 ``(nnz,)`` item ids, ascending within each row, no repeats.
        n_users, n_items: the id ranges.
    """

    __slots__ = ("indptr", "indices", "n_users", "n_items", "_device_copies")

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, n_users: int, n_items: int):
        # Trusted constructor: callers go through from_pairs / from_csr, which validate.
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.indptr.flags.writeable = False
        self.indices.flags.writeable = False
        self.n_users, self.n_items = int(n_users), int(n_items)
        self._device_copies: Dict[str, Tuple] = {}

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_pairs(cls, user, item, n_users: int, n_items: int) -> "UserItemCSR":
        """CSR of equal-length integer arrays ``user`` and ``item`` (numpy, lists or tensors).

        Raises ``ValueError`` naming the argument on lengths that differ, non-integer ids, or
        ids outside ``[0, n_users)`` / ``[0, n_items)``.

            >>> m = UserItemCSR.from_pairs([1, 0, 1, 1], [3, 2, 0, 3], n_users=3, n_items=4)
            >>> m.indptr.tolist(), m.indices.tolist()
            ([0, 1, 3, 3], [2, 0, 3])
        """
        n_users, n_items = _check_sizes(n_users, n_items)
        user, item = _as_int_array(user, "user"), _as_int_array(item, "item")
        if user.size != item.size:
            raise ValueError(f"user and item must have the same length, but got {user.size} "
                             f"and {item.size}")
        _check_range(user, n_users, "user", "n_users")
        _check_range(item, n_items, "item", "n_items")
        keys = np.unique(user * np.int64(max(n_items, 1)) + item)  # sorted by (user, item), unique
        rows = keys // max(n_items, 1)
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
        return cls(indptr, keys - rows * max(n_items, 1), n_users, n_items)

    @classmethod
    def from_csr(cls, indptr, indices, n_users: int, n_items: int,
                 name: str = "interactions") -> "UserItemCSR":
        """Validate a CSR pair; rows are sorted and de-duplicated when they are not already."""
        n_users, n_items = _check_sizes(n_users, n_items)
        indptr = _as_int_array(indptr, f"{name} indptr")
        indices = _as_int_array(indices, f"{name} indices")
        if indptr.size != n_users + 1:
            raise ValueError(f"{name} indptr must have length n_users + 1 = {n_users + 1}, "
                             f"but got {indptr.size}")
        if indptr[0] != 0 or np.any(np.diff(indptr) < 0) or indptr[-1] != indices.size:
            raise ValueError(f"{name} indptr must start at 0, never decrease and end at "
                             f"len(indices) = {indices.size}, but got {indptr[0]} ... {indptr[-1]}")
        _check_range(indices, n_items, f"{name} indices", "n_items")
        rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(indptr))
        return cls.from_pairs(rows, indices, n_users, n_items)

    # -- views -----------------------------------------------------------------------------------
    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    def __len__(self) -> int:
        return self.nnz

    @property
    def shape(self) -> Tuple[int, int]:
        return self.n_users, self.n_items

    def degrees(self) -> np.ndarray:
        """Number of items of each user, int64 ``(n_users,)``."""
        return np.diff(self.indptr)

    def users(self) -> np.ndarray:
        """The user of each entry (the row index expanded), int64 ``(nnz,)``."""
        return np.repeat(np.arange(self.n_users, dtype=np.int64), self.degrees())

    def pairs(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(user, item)`` arrays of every pair, sorted by user then item."""
        return self.users(), self.indices

    def items_of(self, user: int) -> np.ndarray:
        """The sorted items of one user."""
        return self.indices[self.indptr[user]:self.indptr[user + 1]]

    def union(self, *others: Optional["UserItemCSR"]) -> "UserItemCSR":
        """The pairs present in this set or in any of ``others`` (None entries are skipped)."""
        parts = [self] + [o for o in others if o is not None]
        for o in parts[1:]:
            if o.shape != self.shape:
                raise ValueError(f"union(): shapes differ: {self.shape} and {o.shape}")
        if len(parts) == 1:
            return self
        user = np.concatenate([p.users() for p in parts])
        item = np.concatenate([p.indices for p in parts])
        return UserItemCSR.from_pairs(user, item, self.n_users, self.n_items)

    def to_scipy(self, dtype=np.float32):
        """The binary ``(n_users, n_items)`` matrix as ``scipy.sparse.csr_matrix``."""
        import scipy.sparse as sp

        data = np.ones(self.nnz, dtype=dtype)
        return sp.csr_matrix((data, self.indices, self.indptr), shape=self.shape)

    def to(self, device) -> Tuple["object", "object"]:
        """``(indptr, indices)`` as int64 torch tensors on ``device``, uploaded once per device."""
        import torch

        device = torch.device(device)
        key = str(device)
        hit = self._device_copies.get(key)
        if hit is None:
            # torch.tensor copies: a tensor sharing the read-only host arrays could be written.
            hit = tuple(torch.tensor(a, dtype=torch.int64, device=device)
                        for a in (self.indptr, self.indices))
            self._device_copies[key] = hit
        return hit

    def entries_of(self, users, device) -> Tuple["object", "object"]:
        """``(position in users, item)`` of every pair whose user is in ``users`` (a LongTensor
        on ``device``), with torch ops only: no Python loop, no host sync. Used to set the
        scores of seen items to -inf."""
        import torch

        indptr, indices = self.to(device)
        start = indptr[users]
        count = indptr[users + 1] - start
        rows = torch.repeat_interleave(torch.arange(users.numel(), device=device), count)
        first = torch.cumsum(count, 0) - count
        pos = torch.arange(rows.numel(), device=device) + (start - first)[rows]
        return rows, indices[pos]

    # -- persistence -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Plain tensors and ints, loadable with ``torch.load(weights_only=True)``."""
        import torch

        return {"indptr": torch.from_numpy(self.indptr.copy()),
                "indices": torch.from_numpy(self.indices.copy()),
                "n_users": self.n_users, "n_items": self.n_items}

    @classmethod
    def from_state_dict(cls, state: dict, name: str = "interactions") -> "UserItemCSR":
        return cls.from_csr(state["indptr"], state["indices"], state["n_users"], state["n_items"],
                            name=name)

    def __eq__(self, other) -> bool:
        return (isinstance(other, UserItemCSR) and self.shape == other.shape
                and np.array_equal(self.indptr, other.indptr)
                and np.array_equal(self.indices, other.indices))

    __hash__ = None  # mutable-looking container: equality by value, no hashing

    def __repr__(self) -> str:
        return f"UserItemCSR(n_users={self.n_users}, n_items={self.n_items}, nnz={self.nnz})"


def _check_sizes(n_users, n_items) -> Tuple[int, int]:
    for name, value in (("n_users", n_users), ("n_items", n_items)):
        if isinstance(value, bool) or int(value) != value or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, but got {value!r}")
    return int(n_users), int(n_items)


def _check_range(ids: np.ndarray, n: int, name: str, bound: str) -> None:
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise ValueError(f"{name} ids must lie in [0, {bound}={n}), but got range "
                         f"[{ids.min()}, {ids.max()}]")
