"""The (user, positive item) pairs of one BPR training epoch, drawn on the device.

Two ways to choose them, both with ``n_train`` pairs per epoch (``n_train`` = the number of
distinct training pairs, so an epoch has ``ceil(n_train / batch_size)`` batches either way);
``"user"`` is the default here as in :class:`gnn.TrainConfig` and ``--sampling`` (measured
better: docs/REPRODUCE.md, "Sampling"):

- ``"pair"``: every training pair exactly once, in a uniformly random order (a permutation of
  the ``n_train`` pairs). Each pair weighs the same, so heavy users dominate the gradient.
- ``"user"``: ``n_train`` independent draws of ``u ~ U{users with >= 1 training item}``, then
  ``i ~ U(P_u)``. Each user weighs the same: ``P(u, i) = 1 / (n_active * d_u)``. This is the
  sampling of the NGCF and LightGCN authors' code (the LightGCN PyTorch code draws users with
  replacement as here; their TensorFlow code draws the users of one batch without replacement
  when the batch is smaller than the user count, a difference this class does not reproduce).

Both are seeded by the caller's ``torch.Generator`` on the sampler's device and hold no random
state of their own, so a distributed run in which every process draws the same global epoch
from the same seed gets draws that do not depend on the number of processes. Neither
synchronises with the host: ``randperm`` / ``randint`` and gathers only.
"""
from __future__ import annotations

import numpy as np
import torch

from .draws import canonical_device, check_generator, random_bits
from .interactions import UserItemCSR

__all__ = ["PositiveSampler", "SAMPLING_MODES"]

#: The values of ``PositiveSampler(mode=...)`` (and of the trainer's ``--sampling``).
SAMPLING_MODES = ("pair", "user")


class PositiveSampler:
    """Training pairs for BPR, one epoch at a time (see the module docstring for the two modes).

        >>> positives = PositiveSampler(dataset.train_csr, mode="user", device="cuda")
        >>> gen = torch.Generator(device="cuda").manual_seed(epoch_seed)
        >>> users, items = positives.epoch(gen)          # (n_train,) int64 each, on the device
        >>> for s in range(0, len(positives), batch_size):
        ...     u, i = users[s:s + batch_size], items[s:s + batch_size]

    Args:
        train: the training interactions (``dataset.train_csr``).
        mode: ``"user"`` (the default) or ``"pair"``.
        device: where the epochs are drawn (the generator passed to :meth:`epoch` lives there).
    """

    def __init__(self, train: UserItemCSR, mode: str = "user", *, device="cpu"):
        if not isinstance(train, UserItemCSR):
            raise TypeError(f"train must be a gnn.data.UserItemCSR (e.g. dataset.train_csr), "
                            f"but got {type(train).__name__}")
        if mode not in SAMPLING_MODES:
            raise ValueError(f"mode must be one of {SAMPLING_MODES}, but got {mode!r}")
        self.train, self.mode = train, mode
        self.device = canonical_device(device)
        self._items = train.to(self.device)[1]  # the CSR's own device copy, shared
        degree = train.degrees()
        if mode == "pair":
            self._users = torch.from_numpy(train.users()).to(self.device)
        else:
            active = np.flatnonzero(degree > 0)
            self._active = torch.from_numpy(active).to(self.device)
            self._active_degree = torch.from_numpy(degree[active]).to(self.device)
            self._active_start = torch.from_numpy(train.indptr[active]).to(self.device)

    def __len__(self) -> int:
        """Pairs per epoch: the number of distinct training pairs."""
        return self.train.nnz

    def epoch(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(users, items)``: ``len(self)`` training pairs each, int64 on the sampler's device."""
        check_generator(generator, self.device)
        n = len(self)
        if n == 0:
            empty = torch.zeros(0, dtype=torch.int64, device=self.device)
            return empty, empty.clone()
        if self.mode == "pair":
            order = torch.randperm(n, generator=generator, device=self.device)
            return self._users[order], self._items[order]
        return self.pairs_from_bits(random_bits((2, n), generator, self.device))

    def pairs_from_bits(self, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``"user"`` mode's pairs from uniform ``bits`` in ``[0, 2**62)`` of shape ``(2, n)``.

        Row 0 picks the user among those with items, row 1 the item among the user's items
        (``bits % count``). Pure tensor code: no host sync; compiles with ``fullgraph=True``.
        """
        if self.mode != "user":
            raise ValueError(f"pairs_from_bits is the 'user' mode's draw, but mode={self.mode!r}")
        k = bits[0] % self._active.numel()
        users = self._active[k]
        items = self._items[self._active_start[k] + bits[1] % self._active_degree[k]]
        return users, items

    def __repr__(self) -> str:
        return (f"PositiveSampler(mode={self.mode!r}, n_users={self.train.n_users}, "
                f"n_items={self.train.n_items}, n_train={len(self)}, device={str(self.device)!r})")
