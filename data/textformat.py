"""The NGCF / LightGCN text format: ``train.txt`` and ``test.txt``, one line per user.

Each line is ``uid item item ...`` separated by spaces (tabs accepted); ids are already 0-based,
a line may hold a user with no items, empty lines are skipped. ``n_users`` and ``n_items`` are
the largest id seen in either file plus one, so that both parts share one id space. Optional
``user_list.txt`` / ``item_list.txt`` (``org_id remap_id ...`` with a header line) give the
original ids; without them the original id is the remapped one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .errors import DatasetFormatError
from .fastcsv import file_is_empty, read_int_tokens

__all__ = ["read_user_items", "read_id_list", "read_given_split"]


def read_user_items(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(user, item, line_users)`` of one file; ``line_users`` holds every line's uid."""
    path = Path(path)
    if file_is_empty(path):
        raise DatasetFormatError(path, "the file is empty")
    values, lines = read_int_tokens(path)
    first = np.ones(len(values), dtype=bool)
    first[1:] = lines[1:] != lines[:-1]
    line_users = values[first]
    owner = np.cumsum(first) - 1
    is_item = ~first
    return line_users[owner[is_item]], values[is_item], line_users


def read_id_list(path, n: int) -> Optional[np.ndarray]:
    """Original ids by remapped id from ``org_id remap_id`` lines, or None if the file is absent."""
    path = Path(path)
    if not path.is_file():
        return None
    org = [None] * n
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            parts = line.split()
            if not parts or (lineno == 1 and not (len(parts) > 1 and parts[1].isdigit())):
                continue  # the header line ('org_id remap_id')
            if len(parts) < 2 or not parts[1].isdigit():
                raise DatasetFormatError(path, f"expected 'org_id remap_id', got {line.strip()[:80]!r}", line=lineno)
            k = int(parts[1])
            if k < n:
                org[k] = parts[0]
    if any(o is None for o in org):
        missing = next(k for k, o in enumerate(org) if o is None)
        raise DatasetFormatError(path, f"no original id listed for remapped id {missing} (expected 0..{n - 1})")
    if all(o.isdigit() for o in org):
        return np.array([int(o) for o in org], dtype=np.int64)
    return np.array(org)


def read_given_split(folder):
    """``(train_pairs, test_pairs, n_users, n_items, user_ids, item_ids)`` of a text-format folder."""
    folder = Path(folder)
    tr_u, tr_i, tr_lines = read_user_items(folder / "train.txt")
    te_u, te_i, te_lines = read_user_items(folder / "test.txt")
    n_users = int(max(tr_lines.max(initial=-1), te_lines.max(initial=-1))) + 1
    n_items = int(max(tr_i.max(initial=-1), te_i.max(initial=-1))) + 1
    if n_users == 0:
        raise DatasetFormatError(folder / "train.txt", "no users in train.txt or test.txt")
    user_ids = read_id_list(folder / "user_list.txt", n_users)
    item_ids = read_id_list(folder / "item_list.txt", n_items)
    if user_ids is None:
        user_ids = np.arange(n_users, dtype=np.int64)
    if item_ids is None:
        item_ids = np.arange(n_items, dtype=np.int64)
    return (tr_u, tr_i), (te_u, te_i), n_users, n_items, user_ids, item_ids
