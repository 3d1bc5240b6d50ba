"""A cache of facts about a graph's index tensors (validated, long-row schedule), so that they
are computed, with their host-device sync, once per graph instead of once per call.

Key: ``(id(t), t._version)`` of each tensor, plus hashable extras (e.g. ``n_cols``). An entry is
used only while all its tensors live: weak references whose callback drops the entry when one is
freed, so a new tensor at a reused address never hits a dead entry, and graphs built anew at
every step (a transpose built in each backward) do not pile up. An in-place write through torch
bumps ``_version``, so the next lookup misses and recomputes; writes that bypass the version
counter (``.data``, numpy views) are not seen: don't do that to a graph in use.
"""
from __future__ import annotations

import weakref


class TensorCache:
    def __init__(self, max_entries: int = 1024):
        self.max_entries = max_entries  # a bound for many in-place versions of live tensors
        self._entries: dict = {}

    @staticmethod
    def _key(tensors, extra):
        return tuple((id(t), t._version) for t in tensors) + tuple(extra)

    def get(self, tensors, extra=()):
        """The value stored for these tensors (same objects, same versions) and extras, or None."""
        hit = self._entries.get(self._key(tensors, extra))
        if hit is None:
            return None
        refs, value = hit
        return value if all(r() is t for r, t in zip(refs, tensors)) else None

    def put(self, tensors, value, extra=()) -> None:
        key = self._key(tensors, extra)
        entries = self._entries

        def drop(_ref, key=key):
            entries.pop(key, None)

        if len(entries) >= self.max_entries:
            entries.clear()
        entries[key] = (tuple(weakref.ref(t, drop) for t in tensors), value)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, tensors_and_extra) -> bool:
        tensors, extra = tensors_and_extra
        return self.get(tensors, extra) is not None
