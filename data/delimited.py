"""A generic delimited interaction file: ``user,item[,rating[,timestamp]]``.

The rules, applied to the first non-empty line:

- separator (unless given): ``::`` if the line holds it, else tab, else ``,``, else ``;``,
  else a single space;
- header: the line is a header when any of its fields is not a number (a number in double
  quotes, ``"5"``, is a number); the header's names are not interpreted, columns are always
  taken by position;
- columns: 2 (user, item), 3 (+ rating) or 4 (+ timestamp). Ids are non-negative integers,
  ratings any finite number, timestamps integers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .errors import DatasetFormatError
from .fastcsv import file_is_empty, read_columns

__all__ = ["sniff", "read_delimited"]

_SEPARATORS = ["::", "\t", ",", ";", " "]
_COLUMNS = ["user", "item", "rating", "timestamp"]
_KINDS = "iifi"


def _is_number(text: str) -> bool:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    try:
        float(text)
    except ValueError:
        return False
    return True


def _first_line(path: Path) -> tuple[str, int]:
    """The first non-empty line (BOM and line end removed) and its 1-based number."""
    with open(path, "rb") as f:
        skipped = 0
        for raw in f:
            line = raw.decode("utf-8-sig", "replace").rstrip("\r\n")
            skipped += 1
            if line.strip():
                break
        else:
            raise DatasetFormatError(path, "the file is empty")
    return line, skipped


def sniff(path, sep: Optional[str] = None) -> tuple[str, bool, int, int]:
    """``(sep, has_header, n_columns, skip_lines)`` by the rules in the module docstring."""
    path = Path(path)
    line, skipped = _first_line(path)
    if sep is None:
        sep = next((s for s in _SEPARATORS if s in line), None)
        if sep is None:
            raise DatasetFormatError(path, f"cannot find a separator ({_SEPARATORS!r}) in {line[:80]!r}", line=skipped)
    fields = line.split(sep)
    header = not all(_is_number(x) for x in fields)
    if not 2 <= len(fields) <= 4:
        raise DatasetFormatError(path, f"expected 2 to 4 columns (user, item[, rating[, timestamp]]) separated "
                                       f"by {sep!r}, got {len(fields)}: {line[:80]!r}", line=skipped)
    return sep, header, len(fields), skipped if header else 0


def read_delimited(path, sep: Optional[str] = None):
    """``(user, item, rating or None, timestamp or None)`` of a delimited file (raw ids)."""
    path = Path(path)
    if file_is_empty(path):
        raise DatasetFormatError(path, "the file is empty")
    sep, header, ncols, skip = sniff(path, sep)
    cols = read_columns(path, sep, _KINDS[:ncols], _COLUMNS[:ncols], skip_lines=skip)
    if len(cols[0]) == 0:
        line, _ = _first_line(path)
        word = next((x for x in line.split(sep) if not _is_number(x)), "")
        raise DatasetFormatError(path, f"no interactions after the header {line[:80]!r} (a line is "
                                       f"read as a header when a field, here {word[:40]!r}, is not a "
                                       f"number)", line=skip)
    rating = cols[2].astype(np.float32) if ncols >= 3 else None
    timestamp = cols[3] if ncols >= 4 else None
    return cols[0], cols[1], rating, timestamp
