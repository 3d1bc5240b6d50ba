"""What the closed-form models (ItemKNN, the graph filters) share around ``recommend``."""
from __future__ import annotations

from typing import Optional

import numpy as np

from gnn.data import UserItemCSR


def recommend_exclusion(k, exclude: Optional[UserItemCSR], train: UserItemCSR) -> UserItemCSR:
    """The items ``recommend`` never returns (``exclude``, or the training items for None),
    after checking ``k`` (an int >= 1) and ``exclude`` (a UserItemCSR of the model's shape)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"recommend(): k must be an int >= 1, but got {k!r}")
    if exclude is None:
        return train
    if not isinstance(exclude, UserItemCSR):
        raise TypeError(f"recommend(): exclude must be None or a gnn.data.UserItemCSR, but got "
                        f"{type(exclude).__name__}")
    if exclude.shape != train.shape:
        raise ValueError(f"recommend(): exclude covers {exclude.shape} users x items, but the "
                         f"model has {train.shape}")
    return exclude
