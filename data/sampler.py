"""Uniform negative sampling for BPR: for a user u draw j uniformly from the items u has not
interacted with in training, ``j ~ U({0..n_items-1} \\ P_u)``, exactly (never a positive).

Two exact, vectorised methods over the same sorted positives (CSR by user, items ascending):

- ``"rank"`` (default, loop-free): draw ``r ~ U{0 .. n_items - d_u - 1}`` and return the r-th
  item not in ``P_u``. With the user's positives ``p_0 < p_1 < ... < p_{d-1}`` let
  ``q_k = p_k - k`` (how many non-positives lie below ``p_k``; non-decreasing). The r-th
  non-positive is ``j = r + #{k : q_k <= r}``, one ``searchsorted`` over the global keys
  ``u * n_items + q_k`` (sorted, since users are sorted and ``0 <= q_k < n_items``).
- ``"rejection"``: draw ``j ~ U{0..n_items-1}``, test membership of ``u * n_items + j`` in the
  sorted positive keys with ``searchsorted``, redraw only the collisions, for at most
  ``max_rounds`` rounds; whatever still collides is finished with the rank method (so users
  with almost every item cannot make it loop long). Each round costs a device sync.

Both are uniform over the complement and seeded by a ``torch.Generator`` on the sampler's
device; ``state_dict()`` / ``load_state_dict()`` save and restore it so a resumed run draws the
same negatives. "rank" is the default: it is the faster of the two on the CPU (the benchmark
suite's ``negative_sampling`` times both for one epoch of negatives: docs/BENCHMARKS.md,
results/cpu/) and it is one fixed sequence of kernels with no host sync, which suits CUDA:
``sample(users, check=False)`` on "rank" never synchronises (no ``.item()``, ``nonzero`` or
boolean masks), and :meth:`negatives_from_bits` is the pure part of it (compiles with
``torch.compile(fullgraph=True)``).

Distributed training draws the same global batch on every process from the same seed, so the
draws do not depend on the number of processes (the sampler holds no per-rank state).
"""
from __future__ import annotations

import numpy as np
import torch

from .draws import canonical_device, random_bits
from .interactions import UserItemCSR

__all__ = ["UniformNegativeSampler"]

# Below this many queries sorting them costs as much as it saves (measured on CPU, Gowalla keys).
_SORT_MIN_QUERIES = 1 << 14


def _as_index_tensor(x, name: str, bound: int, bound_name: str, device) -> torch.Tensor:
    """1-D int64 tensor on ``device`` with every entry in ``[0, bound)``, else ValueError naming ``name``."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.dim() != 1:
        raise ValueError(f"{name} must be 1-D, but got shape {tuple(t.shape)}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer ids, but got dtype {t.dtype}")
    t = t.to(device=device, dtype=torch.int64)
    if t.numel():
        lo, hi = (int(v) for v in torch.aminmax(t))  # one reduction, one device sync
        if lo < 0 or hi >= bound:
            raise ValueError(f"{name} ids must lie in [0, {bound_name}={bound}), but got min {lo} and max {hi}")
    return t


def _training_csr(train, item, n_users, n_items) -> UserItemCSR:
    """The sampler's positives from either form of its arguments."""
    if isinstance(train, UserItemCSR):
        if item is not None or n_users is not None or n_items is not None:
            raise TypeError("pass either a UserItemCSR alone or (user, item, n_users, n_items), not both")
        csr = train
    elif item is None or n_users is None or n_items is None:
        raise TypeError("pass a UserItemCSR (e.g. dataset.train_csr) or all of user, item, n_users, n_items")
    else:
        csr = UserItemCSR.from_pairs(train, item, n_users, n_items)
    for name, value in (("n_users", csr.n_users), ("n_items", csr.n_items)):
        if value < 1:
            raise ValueError(f"{name} must be a positive integer, but got {value!r}")
    if csr.n_users * csr.n_items >= 2**63:
        raise ValueError(f"n_users * n_items must fit in int64, but got {csr.n_users} * {csr.n_items}")
    full = np.flatnonzero(csr.degrees() == csr.n_items)
    if full.size:
        shown = ", ".join(str(u) for u in full[:5]) + (", ..." if full.size > 5 else "")
        raise ValueError(
            f"{full.size} user(s) interacted with every one of the {csr.n_items} items in training, so "
            f"no negative item exists for them (user index {shown}; dataset.user_ids[u] is the "
            f"original id). BPR needs a negative for every user: drop these users from the "
            f"training data, or use a dataset with more items.")
    return csr


class UniformNegativeSampler:
    """Exact uniform negative sampler over the items each user has not seen in training.

        >>> sampler = UniformNegativeSampler(dataset.train_csr, device="cuda", seed=0)
        >>> neg = sampler.sample(users)                  # checks the ids (one device sync)
        >>> neg = sampler.sample(users, check=False)     # no sync: ids the library produced
        >>> negs = sampler.sample(users, k=8)            # (len(users), 8): 8 per entry

    Args:
        train: the training interactions as a :class:`gnn.data.UserItemCSR` (the dataset's
            ``train_csr``); or, in the older form, ``(user, item, n_users, n_items)``: (m,)
            integer ids (numpy arrays, lists or tensors; duplicated pairs are collapsed).
        device: where the positives live and the negatives are drawn (``"cpu"``, ``"cuda"``...).
        seed: seed of the sampler's ``torch.Generator`` (on ``device``).
        method: ``"rank"`` (loop-free, sync-free) or ``"rejection"`` (see the module docstring).
        max_rounds: rejection rounds before the rank method finishes the remaining draws.
        sort_queries: sort each batch of search keys (if it has >= 16384) before the binary
            searches (default: on CPU only, where searches in key order stay in cache; on CUDA
            the sort costs more than it saves). The result does not depend on it.

    Raises:
        ValueError: on ids out of range or of a non-integer dtype (the message names the
            argument), and when some user has interacted with every item (no negative exists;
            the message names the users and what to do).
        TypeError: when the arguments mix the two forms.
    """

    def __init__(self, train, item=None, n_users: int | None = None, n_items: int | None = None, *,
                 device="cpu", seed: int = 0, method: str = "rank", max_rounds: int = 4,
                 sort_queries: bool | None = None):
        if method not in ("rank", "rejection"):
            raise ValueError(f"method must be 'rank' or 'rejection', but got {method!r}")
        if int(max_rounds) != max_rounds or max_rounds < 0:
            raise ValueError(f"max_rounds must be a non-negative integer, but got {max_rounds!r}")
        self.train = _training_csr(train, item, n_users, n_items)
        self.device = canonical_device(device)
        self.n_users, self.n_items = self.train.n_users, self.train.n_items
        self.method, self.max_rounds, self.seed = method, int(max_rounds), seed
        self.sort_queries = self.device.type == "cpu" if sort_queries is None else bool(sort_queries)
        # int32 search keys when every u * n_items + i fits: half the bytes per binary search step.
        self._key_dtype = torch.int32 if self.n_users * self.n_items < 2**31 else torch.int64
        self._build()
        self._gen = torch.Generator(device=self.device)
        self._gen.manual_seed(seed)

    def _build(self) -> None:
        csr, n_items = self.train, self.n_items
        rows = csr.users()
        # Sorted unique keys u * n_items + i (the CSR's rows are sorted and unique).
        keys = rows * n_items + csr.indices
        # q_k = p_k - k: the number of non-positive items below the k-th positive of the user.
        local = np.arange(csr.nnz, dtype=np.int64) - csr.indptr[rows]
        upload = lambda a: torch.from_numpy(a).to(self.device, self._key_dtype)  # noqa: E731
        self._keys, self._rank_keys = upload(keys), upload(keys - local)
        self._indptr = csr.to(self.device)[0]  # shared with the other users of this CSR
        self._n_free = torch.from_numpy(n_items - csr.degrees()).to(self.device)  # >= 1 each

    @property
    def nnz(self) -> int:
        """Number of distinct training (user, item) pairs."""
        return self._keys.numel()

    @property
    def degree(self) -> torch.Tensor:
        """(n_users,) number of distinct training items of each user."""
        return self.n_items - self._n_free

    def _search(self, keys: torch.Tensor, query: torch.Tensor, right: bool) -> torch.Tensor:
        """``torch.searchsorted(keys, query, right=right)`` as int64, optionally in sorted query order."""
        query = query.to(self._key_dtype)
        if not self.sort_queries or query.numel() < _SORT_MIN_QUERIES:
            return torch.searchsorted(keys, query, right=right)
        # Random queries make every binary search miss the cache; in sorted order consecutive
        # searches walk the same path. Equal queries get equal answers, so the order of ties is moot.
        sorted_query, perm = torch.sort(query)
        pos = torch.empty(query.shape, dtype=torch.int64, device=query.device)
        pos[perm] = torch.searchsorted(keys, sorted_query, right=right)
        return pos

    def negatives_from_bits(self, users: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        """The "rank" method's negatives for ``users`` given uniform ``bits`` in ``[0, 2**62)``.

        ``r = bits % (n_items - d_u)`` picks the r-th non-positive of each user. Pure tensor code
        (gathers, one ``searchsorted``): no host sync, no data-dependent shape, and it compiles
        with ``torch.compile(fullgraph=True)``. ``users`` must be valid int64 ids on the device.
        """
        r = bits % self._n_free[users]
        # #{k : q_k <= r} among this user's positives; other users' keys fall outside
        # [u * n_items, u * n_items + r], so a global search minus the segment start counts them.
        below = self._search(self._rank_keys, users * self.n_items + r, right=True) - self._indptr[users]
        return r + below

    def _rank_select(self, users: torch.Tensor) -> torch.Tensor:
        return self.negatives_from_bits(users, random_bits(users.shape, self._gen, self.device))

    def _is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        if self._keys.numel() == 0:
            return torch.zeros_like(items, dtype=torch.bool)
        q = users * self.n_items + items
        pos = self._search(self._keys, q, right=False).clamp_(max=self._keys.numel() - 1)
        return self._keys[pos] == q

    def _rejection(self, users: torch.Tensor) -> torch.Tensor:
        j = torch.empty_like(users)
        todo = torch.arange(users.numel(), device=self.device)  # entries without an accepted draw
        for _ in range(self.max_rounds):
            j[todo] = torch.randint(0, self.n_items, todo.shape, generator=self._gen, device=self.device)
            todo = todo[self._is_positive(users[todo], j[todo])]
            if todo.numel() == 0:
                return j
        # Still colliding after max_rounds (users with almost every item): finish exactly.
        j[todo] = self._rank_select(users[todo])
        return j

    def sample(self, users, *, k: int | None = None, check: bool = True) -> torch.Tensor:
        """Negative items for ``users`` (any shape), as int64 on the sampler's device: one per
        entry (the shape of ``users``), or with ``k`` the ``k`` negatives of each entry in a
        trailing dimension (shape ``users.shape + (k,)``).

        Every draw is independent (the ``k`` negatives of an entry may repeat, as draws with
        replacement do); the same user may appear many times. ``sample(users, k=1)`` draws the
        same items as ``sample(users)``, in shape ``(..., 1)``. ``check=True`` verifies
        the ids (dtype, range: one device sync). ``check=False`` skips that: it is for ids the
        library itself produced (e.g. a :class:`gnn.data.PositiveSampler` epoch), given as an
        int64 tensor on the sampler's device; with ``method="rank"`` the call then never
        synchronises with the host (safe inside a CUDA-graph-captured step). Ids out of range
        are not detected then (on CUDA they may fault). "rejection" always synchronises.
        """
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ValueError(f"sample(): k must be None or an int >= 1 (negatives per entry), "
                             f"but got {k!r}")
        users = users if isinstance(users, torch.Tensor) else torch.as_tensor(np.asarray(users))
        shape = users.shape if k is None else users.shape + (k,)
        if check:
            flat = _as_index_tensor(users.reshape(-1), "users", self.n_users, "n_users", self.device)
        else:
            flat = users.reshape(-1).to(device=self.device, dtype=torch.int64)
        if k is not None and k > 1:  # entry e's k draws are consecutive: row-major (..., k)
            flat = flat.unsqueeze(1).expand(-1, k).reshape(-1)
        out = self._rank_select(flat) if self.method == "rank" else self._rejection(flat)
        return out.reshape(shape)

    def reseed(self, seed: int) -> None:
        """Restart the random stream from ``seed`` (training re-seeds each epoch for exact resume)."""
        self.seed = int(seed)
        self._gen.manual_seed(self.seed)

    def state_dict(self) -> dict:
        """The generator state (and what it belongs to), for checkpointing a training run."""
        return {"generator": self._gen.get_state(), "seed": self.seed, "method": self.method,
                "n_users": self.n_users, "n_items": self.n_items, "nnz": self.nnz}

    def load_state_dict(self, state: dict) -> None:
        """Restore a state saved by ``state_dict()``: the next draws repeat the saved stream."""
        for key in ("n_users", "n_items", "nnz", "method"):
            if key in state and state[key] != getattr(self, key):
                raise ValueError(f"state was saved from a sampler with {key}={state[key]!r}, "
                                 f"but this one has {key}={getattr(self, key)!r}")
        # get_state() is a CPU ByteTensor for every device; a checkpoint may have been mapped elsewhere.
        self._gen.set_state(state["generator"].to("cpu"))

    def __repr__(self) -> str:
        return (f"UniformNegativeSampler(n_users={self.n_users}, n_items={self.n_items}, nnz={self.nnz}, "
                f"method={self.method!r}, device={str(self.device)!r}, seed={self.seed})")
