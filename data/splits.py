"""Per-user train / validation / test splits of an interaction log.

Every function takes plain arrays (one entry per interaction) and returns three sorted int64
index arrays ``(train_idx, valid_idx, test_idx)`` into them. The three are disjoint and their
union is ``arange(len(user))``. All work is vectorised: each user's interactions are brought
together by one stable sort, ranked within the user, and the rank decides the part.

Order inside a user (rank 0 goes to train first, the last ranks go to test):

- ``split_random``: a uniformly random permutation, drawn from ``numpy.random.default_rng(seed)``;
  the same seed gives the same split, another seed a different one.
- ``split_temporal``: oldest first; equal timestamps keep their input order (the interaction
  that comes first in the input is treated as older).
- ``split_leave_one_out``: as ``split_temporal`` when timestamps are given, else random.

How many interactions each part gets (THE RULE, also for users with few interactions).
For a user with ``n`` interactions and ratios ``(r_train, r_valid, r_test)``::

    n_test  = round_half_up(n * r_test)                      (0 if r_test == 0)
    n_test  = max(n_test, 1)            if n >= 2 and r_test  > 0
    n_test  = min(n_test, n - 1)                             (train keeps >= 1)
    n_valid = round_half_up(n * r_valid)                     (0 if r_valid == 0)
    n_valid = max(n_valid, 1)           if n >= 3 and r_valid > 0
    n_valid = min(n_valid, n - 1 - n_test)                   (train keeps >= 1)
    n_train = n - n_test - n_valid

So test is served before validation, and training always keeps at least one interaction:

=====  =====  =====  ====  (ratios 0.8 / 0.1 / 0.1)
n      train  valid  test
=====  =====  =====  ====
1      1      0      0     a single interaction cannot be evaluated: it stays in train
2      1      0      1
3      1      1      1
10     8      1      1
15     11     2      2     (1.5 rounds half up to 2)
=====  =====  =====  ====

Leave-one-out uses ``n_test = 1`` if ``n >= 2`` and ``n_valid = 1`` if ``n >= 3`` (and
``validation=True``), i.e. the same rule with "one" in place of the rounded ratio.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["split_random", "split_temporal", "split_leave_one_out", "split_sizes"]

# Slack for "n * r is really k + 0.5 but came out as k + 0.4999999" in floating point.
_ROUND_EPS = 1e-9


def _check_user(user, n_users: int) -> np.ndarray:
    user = np.asarray(user)
    if user.ndim != 1:
        raise ValueError(f"user must be a 1-D array, but got shape {user.shape}")
    if user.size and not np.issubdtype(user.dtype, np.integer):
        raise ValueError(f"user must hold integer ids, but got dtype {user.dtype}")
    if int(n_users) != n_users or n_users < 0:
        raise ValueError(f"n_users must be a non-negative integer, but got {n_users!r}")
    if user.size and (user.min() < 0 or user.max() >= n_users):
        raise ValueError(
            f"user ids must lie in [0, n_users={n_users}), but got min {user.min()} and max {user.max()}"
        )
    return user.astype(np.int64, copy=False)


def _check_timestamp(timestamp, n: int) -> np.ndarray:
    timestamp = np.asarray(timestamp)
    if timestamp.shape != (n,):
        raise ValueError(f"timestamp must have shape ({n},) like user, but got {timestamp.shape}")
    if timestamp.size and not np.issubdtype(timestamp.dtype, np.number):
        raise ValueError(f"timestamp must be numeric, but got dtype {timestamp.dtype}")
    if np.issubdtype(timestamp.dtype, np.floating) and np.isnan(timestamp).any():
        raise ValueError("timestamp must not contain NaN")
    return timestamp


def _check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """(train, test) or (train, valid, test), each >= 0, train > 0, summing to 1."""
    ratios = tuple(float(r) for r in ratios)
    if len(ratios) == 2:
        ratios = (ratios[0], 0.0, ratios[1])
    if len(ratios) != 3:
        raise ValueError(f"ratios must have 2 (train, test) or 3 (train, valid, test) entries, but got {ratios}")
    if not all(math.isfinite(r) and r >= 0 for r in ratios) or ratios[0] <= 0:
        raise ValueError(f"ratios must be >= 0 with a positive train ratio, but got {ratios}")
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise ValueError(f"ratios must sum to 1, but got {ratios} (sum {sum(ratios)})")
    return ratios


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5 + _ROUND_EPS).astype(np.int64)


def split_sizes(n: np.ndarray, ratios: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-user part sizes ``(n_train, n_valid, n_test)`` for interaction counts ``n`` (the rule above)."""
    _, r_valid, r_test = _check_ratios(ratios)
    n = np.asarray(n, dtype=np.int64)
    n_test = _round_half_up(n * r_test) if r_test > 0 else np.zeros_like(n)
    if r_test > 0:
        n_test = np.where(n >= 2, np.maximum(n_test, 1), n_test)
    n_test = np.clip(n_test, 0, np.maximum(n - 1, 0))
    n_valid = _round_half_up(n * r_valid) if r_valid > 0 else np.zeros_like(n)
    if r_valid > 0:
        n_valid = np.where(n >= 3, np.maximum(n_valid, 1), n_valid)
    n_valid = np.clip(n_valid, 0, np.maximum(n - 1 - n_test, 0))
    return n - n_test - n_valid, n_valid, n_test


def _assign(order: np.ndarray, user: np.ndarray, n_users: int, sizes) -> tuple[np.ndarray, ...]:
    """Cut each user's run in ``order`` into train | valid | test by rank within the user.

    ``order`` must list the interactions grouped by user in ascending user id (what a stable
    sort by user gives), each user's run ordered from "first to train" to "last to test".
    """
    n_train, n_valid, _ = sizes
    counts = np.bincount(user, minlength=n_users)
    start = np.cumsum(counts) - counts
    u = user[order]
    rank = np.arange(order.size, dtype=np.int64) - start[u]
    part_sorted = (rank >= n_train[u]).astype(np.int8) + (rank >= n_train[u] + n_valid[u])
    part = np.empty(order.size, dtype=np.int8)
    part[order] = part_sorted
    return tuple(np.flatnonzero(part == k).astype(np.int64) for k in range(3))


def _random_order(user: np.ndarray, seed) -> np.ndarray:
    # A random permutation followed by a *stable* sort by user leaves each user's
    # interactions in uniformly random order.
    perm = np.random.default_rng(seed).permutation(user.size)
    return perm[np.argsort(user[perm], kind="stable")]


def _temporal_order(user: np.ndarray, timestamp: np.ndarray) -> np.ndarray:
    # lexsort is stable: by user, then timestamp, then input position.
    return np.lexsort((timestamp, user))


def split_random(user, n_users: int, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed=0):
    """Per-user random split: each user's interactions are shuffled and cut by ``ratios``.

    Args:
        user: (m,) integer user id of each interaction, in ``[0, n_users)``.
        n_users: number of users.
        ratios: ``(train, valid, test)`` or ``(train, test)`` (then ``valid_idx`` is empty);
            sizes per user follow the module's rounding rule.
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        ``(train_idx, valid_idx, test_idx)``: sorted int64 indices into ``user``.
    """
    user = _check_user(user, n_users)
    sizes = split_sizes(np.bincount(user, minlength=n_users), ratios)
    return _assign(_random_order(user, seed), user, n_users, sizes)


def split_temporal(user, timestamp, n_users: int, ratios: Sequence[float] = (0.8, 0.1, 0.1)):
    """Per-user temporal split: the oldest interactions train, the newest test.

    Equal timestamps keep input order (earlier position counts as older). Sizes follow the
    module's rounding rule. Returns sorted int64 ``(train_idx, valid_idx, test_idx)``.
    """
    user = _check_user(user, n_users)
    timestamp = _check_timestamp(timestamp, user.size)
    sizes = split_sizes(np.bincount(user, minlength=n_users), ratios)
    return _assign(_temporal_order(user, timestamp), user, n_users, sizes)


def split_leave_one_out(user, n_users: int, timestamp=None, seed=0, validation: bool = True):
    """Leave-one-out: each user's last interaction is the test item, the one before validation.

    "Last" means the latest timestamp (ties: the later input position), or a random one when
    ``timestamp`` is None (seeded by ``seed``). A user with ``n`` interactions gives one to test
    if ``n >= 2`` and one to validation if ``n >= 3`` and ``validation``; the rest train.
    Returns sorted int64 ``(train_idx, valid_idx, test_idx)``.
    """
    user = _check_user(user, n_users)
    if timestamp is None:
        order = _random_order(user, seed)
    else:
        order = _temporal_order(user, _check_timestamp(timestamp, user.size))
    n = np.bincount(user, minlength=n_users)
    n_test = (n >= 2).astype(np.int64)
    n_valid = ((n >= 3) & bool(validation)).astype(np.int64)
    return _assign(order, user, n_users, (n - n_test - n_valid, n_valid, n_test))
