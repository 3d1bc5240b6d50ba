"""The two containers of gnn.data and the id bookkeeping behind them.

``Interactions`` is one interaction log with ids remapped to ``0..n-1``; ``SplitDataset`` is what
training consumes: train / valid / test pairs over the same id space. Both keep the original ids
(``user_ids[u]`` is the original id of remapped user ``u``) and translate back with
:meth:`user_index` / :meth:`item_index`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Optional

import numpy as np

from .badlines import BadLines
from .interactions import UserItemCSR
from .tokens import TokenIds

__all__ = ["Interactions", "SplitDataset", "remap_ids", "collapse_duplicates"]


def remap_ids(ids) -> tuple[np.ndarray, np.ndarray]:
    """``(index, uniques)`` with ``uniques`` sorted and ``uniques[index] == ids``.

    Small non-negative integer ids (MovieLens) take a presence table, O(n + max id), which is
    several times faster than the sort inside ``np.unique`` on tens of millions of rows. Text ids
    (a gnn.data.tokens.TokenIds) are already numbered in sorted order: only the codes in use are
    renumbered, and ``uniques`` are strings.
    """
    if isinstance(ids, TokenIds):
        index, used = remap_ids(ids.codes)
        return index, ids.vocab[used]
    ids = np.asarray(ids)
    if ids.size and ids.dtype.kind in "iu":
        lo, hi = int(ids.min()), int(ids.max())
        if lo >= 0 and hi <= max(4 * ids.size, 1 << 20):
            present = np.zeros(hi + 1, dtype=bool)
            present[ids] = True
            uniques = np.flatnonzero(present).astype(ids.dtype, copy=False)
            lookup = np.cumsum(present, dtype=np.int64) - 1
            return lookup[ids], uniques
    uniques, index = np.unique(ids, return_inverse=True)
    return index.astype(np.int64, copy=False).reshape(-1), uniques


def collapse_duplicates(user: np.ndarray, item: np.ndarray, n_items: int,
                        rating: Optional[np.ndarray] = None,
                        timestamp: Optional[np.ndarray] = None):
    """Merge repeated (user, item) pairs into one interaction.

    The merged interaction keeps the latest timestamp and the highest rating (each taken over
    the repeats separately): the pair happened, its most recent time is the one a temporal or
    leave-one-out split should see, and with implicit feedback a higher rating never hides a
    positive. Input order is kept otherwise (first occurrence). Returns the four arrays
    (``rating``/``timestamp`` stay None when None).
    """
    key = user.astype(np.int64) * np.int64(max(n_items, 1)) + item
    if key.size < 2:
        return user, item, rating, timestamp
    # MovieLens files are sorted by (user, item): an O(n) check avoids a 25M-row sort.
    if bool((key[1:] > key[:-1]).all()):
        return user, item, rating, timestamp
    order = np.argsort(key, kind="stable")
    ks = key[order]
    first = np.ones(len(ks), dtype=bool)
    first[1:] = ks[1:] != ks[:-1]
    if first.all():
        return user, item, rating, timestamp
    group_start = np.flatnonzero(first)
    keep = np.sort(order[group_start])  # first occurrence, in input order
    pos = np.empty(len(keep), dtype=np.int64)
    pos[np.argsort(order[group_start])] = np.arange(len(keep))
    # pos maps group number -> output slot
    out_r = out_t = None
    if rating is not None:
        out_r = np.empty(len(keep), dtype=rating.dtype)
        out_r[pos] = np.maximum.reduceat(rating[order], group_start)
    if timestamp is not None:
        out_t = np.empty(len(keep), dtype=timestamp.dtype)
        out_t[pos] = np.maximum.reduceat(timestamp[order], group_start)
    return user[keep], item[keep], out_r, out_t


class _IdMaps:
    """Original <-> remapped id lookups shared by both containers."""

    user_ids: np.ndarray
    item_ids: np.ndarray

    @staticmethod
    def _lookup(ids: np.ndarray, query, missing, what: str) -> np.ndarray:
        ids = np.asarray(ids)
        q = np.asarray(query)
        if len(ids) > 1 and bool((ids[1:] > ids[:-1]).all()):
            order = None
            sorted_ids = ids
        else:  # given splits keep the files' order, which need not be sorted
            order = np.argsort(ids, kind="stable")
            sorted_ids = ids[order]
        try:
            pos = np.searchsorted(sorted_ids, q)
        except TypeError as exc:
            raise KeyError(f"{what} ids of type {q.dtype} cannot be compared with {ids.dtype}") from exc
        pos = np.minimum(pos, max(len(sorted_ids) - 1, 0))
        found = (sorted_ids[pos] == q) if len(sorted_ids) else np.zeros(q.shape, dtype=bool)
        out = pos if order is None else order[pos]
        out = np.where(found, out, -1).astype(np.int64)
        if missing == "raise" and not bool(np.all(found)):
            bad = q[~found] if q.ndim else q
            raise KeyError(f"unknown original {what} id(s): {np.atleast_1d(bad)[:10].tolist()}")
        return out

    def user_index(self, original_ids, missing: str = "raise") -> np.ndarray:
        """Remapped ids of original user ids (vectorised). ``missing="ignore"`` gives -1 for unknown."""
        return self._lookup(self.user_ids, original_ids, missing, "user")

    def item_index(self, original_ids, missing: str = "raise") -> np.ndarray:
        """Remapped ids of original item ids (vectorised). ``missing="ignore"`` gives -1 for unknown."""
        return self._lookup(self.item_ids, original_ids, missing, "item")

    def user_map(self) -> dict:
        """``{original id: remapped id}`` for users (a dict, for scalar look-ups)."""
        return {k: i for i, k in enumerate(self.user_ids.tolist())}

    def item_map(self) -> dict:
        """``{original id: remapped id}`` for items."""
        return {k: i for i, k in enumerate(self.item_ids.tolist())}

    def title(self, item: int) -> str:
        """The display name of remapped ``item``: its title when known, else its original id."""
        titles = getattr(self, "item_titles", None)
        if titles is not None and titles[item]:
            return titles[item]
        return str(self.item_ids[item])


@dataclass(repr=False)
class Interactions(_IdMaps):
    """One interaction log with ids remapped to ``0..n-1`` and (user, item) pairs unique.

    ``rating`` is float32 and ``timestamp`` int64 (seconds; float64 from a ``.inter`` file with
    fractional times) where the source has them. ``user_ids`` / ``item_ids`` are int64, or
    numpy strings for text ids. ``bad_lines`` reports the lines skipped by
    ``on_bad_line="skip"`` (None when none were); ``notes`` says what was read how.
    """

    name: str
    n_users: int
    n_items: int
    user: np.ndarray
    item: np.ndarray
    rating: Optional[np.ndarray]
    timestamp: Optional[np.ndarray]
    user_ids: np.ndarray
    item_ids: np.ndarray
    item_titles: Optional[list] = None
    notes: dict = field(default_factory=dict)
    bad_lines: Optional[BadLines] = None

    def __len__(self) -> int:
        return len(self.user)

    def __repr__(self) -> str:
        extra = [k for k in ("rating", "timestamp") if getattr(self, k) is not None]
        return (f"Interactions(name={self.name!r}, n_users={self.n_users}, n_items={self.n_items}, "
                f"n_interactions={len(self.user)}, columns={['user', 'item'] + extra}, "
                f"titles={self.item_titles is not None})")


@dataclass(repr=False)
class SplitDataset(_IdMaps):
    """Train / validation / test (user, item) int64 pairs over one remapped id space.

    ``protocol`` says how the test part was made: ``"random"``, ``"temporal"``, ``"loo"`` or
    ``"given"`` (the files' own split). ``valid`` is None when no validation part was asked for.
    ``bad_lines``: the malformed lines skipped with ``on_bad_line="skip"``, or None.
    """

    name: str
    n_users: int
    n_items: int
    train: tuple
    valid: Optional[tuple]
    test: tuple
    user_ids: np.ndarray
    item_ids: np.ndarray
    item_titles: Optional[list] = None
    protocol: str = "random"
    notes: dict = field(default_factory=dict)
    bad_lines: Optional[BadLines] = None

    # -- each part as CSR, built once (adjacency, samplers, evaluator and saved models use these)
    @cached_property
    def train_csr(self) -> UserItemCSR:
        """The training pairs, duplicates collapsed."""
        return UserItemCSR.from_pairs(*self.train, self.n_users, self.n_items)

    @cached_property
    def valid_csr(self) -> Optional[UserItemCSR]:
        """The validation pairs, or None when the split has no validation part."""
        if self.valid is None or len(self.valid[0]) == 0:
            return None
        return UserItemCSR.from_pairs(*self.valid, self.n_users, self.n_items)

    @cached_property
    def test_csr(self) -> UserItemCSR:
        return UserItemCSR.from_pairs(*self.test, self.n_users, self.n_items)

    @cached_property
    def seen_csr(self) -> UserItemCSR:
        """Every pair the dataset holds, in any part: what recommendations to people exclude."""
        return self.train_csr.union(self.valid_csr, self.test_csr)

    def __repr__(self) -> str:
        nv = "None" if self.valid is None else len(self.valid[0])
        return (f"SplitDataset(name={self.name!r}, protocol={self.protocol!r}, n_users={self.n_users}, "
                f"n_items={self.n_items}, train={len(self.train[0])}, valid={nv}, "
                f"test={len(self.test[0])})")
