"""The cut-offs K of the ranking metrics and the names of the results (shared by the evaluator
and its dense reference)."""
from __future__ import annotations

from typing import Iterable

import numpy as np

#: The per-user metrics, averaged over the evaluated users (docs/DESIGN.md §3). Item coverage,
#: a property of all the lists together, is reported beside them as ``coverage@K``.
METRICS = ("recall", "precision", "ndcg", "hit", "mrr", "map")


def normalize_ks(ks) -> tuple[int, ...]:
    """``ks`` as a non-empty tuple of positive ints (an int ``k`` means ``(k,)``); duplicates dropped."""
    if isinstance(ks, (int, np.integer)):
        ks = (ks,)
    try:
        ks = tuple(ks)
    except TypeError:
        raise ValueError(f"ks must be an int or a sequence of ints, but got {ks!r}") from None
    if not ks:
        raise ValueError("ks must not be empty")
    out = []
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise ValueError(f"every K in ks must be a positive int, but got {k!r}")
        if int(k) not in out:
            out.append(int(k))
    return tuple(out)


def metric_names(ks: Iterable[int]) -> list[str]:
    """Keys of the per-user metrics in the result dict, in order: every metric of
    :data:`METRICS` for each K."""
    return [f"{m}@{k}" for k in ks for m in METRICS]
