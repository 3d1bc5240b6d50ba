"""RecBole's atomic interaction files (``<name>.inter``), read without RecBole.

The format: tab-separated text whose first line names every column as ``name:type``, the type
one of ``token`` (a text id), ``token_seq`` (space-separated tokens), ``float`` and
``float_seq``; for example ``user_id:token  item_id:token  rating:float  timestamp:float``.
Interactions are read from the fields named ``user_id`` and ``item_id`` (both ``token``, as
RecBole's default USER_ID_FIELD / ITEM_ID_FIELD) and, when present, ``rating`` and
``timestamp`` (``float``). Every other field, sequences included, is not read; the dataset's
``notes["ignored_fields"]`` lists them. Token ids that are all non-negative integers without a
leading zero are kept as integers (the ids MovieLens' own files give), others as strings.
Timestamps stay float64 unless every one is a whole number (then int64, as elsewhere).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .errors import DatasetFormatError
from .fastcsv import file_is_empty, read_columns

__all__ = ["TYPES", "read_atomic", "inter_files"]

TYPES = ("token", "token_seq", "float", "float_seq")
_WANTED = {"user_id": "token", "item_id": "token", "rating": "float", "timestamp": "float"}
_KIND = {"user_id": "I", "item_id": "I", "rating": "f", "timestamp": "f"}


def _header(path: Path) -> list[tuple[str, str]]:
    """``[(name, type)]`` of the first line."""
    with open(path, "rb") as f:
        line = f.readline().decode("utf-8-sig", "replace").rstrip("\r\n")
    fields = line.split("\t")
    if len(fields) < 2:
        raise DatasetFormatError(path, f"expected a tab-separated header of typed fields such as "
                                       f"'user_id:token<TAB>item_id:token', got {line[:80]!r}", line=1)
    out = []
    for field in fields:
        name, colon, kind = field.strip().rpartition(":")
        if not colon or not name:
            raise DatasetFormatError(path, f"field {field!r} has no type (expected name:type, the type "
                                           f"one of {', '.join(TYPES)})", line=1)
        if kind not in TYPES:
            raise DatasetFormatError(path, f"field {name!r} has type {kind!r} (known: {', '.join(TYPES)})", line=1)
        out.append((name, kind))
    return out


def read_atomic(path, *, bad_lines=None):
    """``(user, item, rating or None, timestamp or None, notes)`` of a ``.inter`` file.

    ``user`` / ``item`` are int64 arrays or gnn.data.tokens.TokenIds (see the module docstring);
    ``notes`` holds ``"ignored_fields"`` when the file has fields that are not read.
    ``bad_lines`` (gnn.data.badlines.BadLines) skips malformed lines instead of raising.
    """
    path = Path(path)
    if file_is_empty(path):
        raise DatasetFormatError(path, "the file is empty")
    fields = _header(path)
    typed = [f"{n}:{t}" for n, t in fields]
    for name in ("user_id", "item_id"):
        if (name, "token") not in fields:
            raise DatasetFormatError(path, f"no field '{name}:token' (fields: {', '.join(typed)})", line=1)
    used = {n for n, t in fields if _WANTED.get(n) == t}
    kinds = [_KIND[n] if n in used else "-" for n, _ in fields]
    names = [n for n, _ in fields]
    cols = dict(zip(names, read_columns(path, "\t", kinds, names, skip_lines=1, bad_lines=bad_lines)))
    if len(cols["user_id"]) == 0:
        raise DatasetFormatError(path, "no interactions after the header")
    ignored = [f for (n, _), f in zip(fields, typed) if n not in used]
    notes = {"ignored_fields": f"not read: {', '.join(ignored)}"} if ignored else {}
    rating = cols["rating"].astype(np.float32) if "rating" in used else None
    return cols["user_id"], cols["item_id"], rating, _timestamps(cols.get("timestamp")), notes


def _timestamps(t: Optional[np.ndarray]) -> Optional[np.ndarray]:
    if t is None:
        return None
    whole = np.all(t == np.floor(t)) and (len(t) == 0 or np.abs(t).max() < 2.0 ** 62)
    return t.astype(np.int64) if whole else t


def inter_files(folder: Path) -> list[Path]:
    """``[folder/<folder name>.inter]`` when it exists, else every ``.inter`` file of the folder."""
    own = folder / f"{folder.name}.inter"
    return [own] if own.is_file() else sorted(folder.glob("*.inter"))
