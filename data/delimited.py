"""A generic delimited interaction file: ``user,item[,rating[,timestamp]]``.

The rules, applied to the first two non-empty lines:

- separator (unless given): ``::`` if the first line holds it, else tab, else ``,``, else ``;``,
  else a single space;
- header (unless ``header=`` says): a first line with a number in it is data (a number in
  double quotes, ``"5"``, is a number). A first line of words only is a header when it is the
  only line, when the second line has a number in its place, or when every field is a name with
  no digit (``user,item``, ``userId``); ``user_0000,item_7`` followed by more ids is data.
  ``alice,matrix`` followed by ``bob,up`` is read as a header: pass ``header=False``. The
  header's names are not interpreted, columns are always taken by position;
- columns: 2 (user, item), 3 (+ rating) or 4 (+ timestamp). Ratings are finite numbers,
  timestamps integers. Ids are any text: a column whose every id is a non-negative integer
  without a leading zero is read as integers (the fast path), any other as strings
  (gnn.data.tokens; ``007``, ``-3``, ``user_0000`` and 20-digit numbers stay text).
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


def _unquoted(text: str) -> str:
    text = text.strip()
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _is_number(text: str) -> bool:
    try:
        float(_unquoted(text))
    except ValueError:
        return False
    return True


def _is_name(text: str) -> bool:
    """A column name: letters and ``_ - . : space`` only (``user_id``, ``userId``, ``user_id:token``)."""
    t = _unquoted(text)
    return t[:1].isalpha() and all(c.isalpha() or c in "_-.: " for c in t)


def _first_lines(path: Path, n: int = 2) -> list[tuple[str, int]]:
    """The first ``n`` non-empty lines (BOM and line end removed) with their 1-based numbers."""
    out = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8", "replace").rstrip("\r\n")
            if line.strip():
                out.append((line, lineno))
                if len(out) == n:
                    break
    if not out:
        raise DatasetFormatError(path, "the file is empty")
    return out


def _looks_like_header(first: list[str], second: Optional[list[str]]) -> bool:
    if any(_is_number(x) for x in first):
        return False
    if second is None or any(_is_number(x) for x in second):
        return True
    return all(_is_name(x) for x in first)


def sniff(path, sep: Optional[str] = None,
          header: Optional[bool] = None) -> tuple[str, bool, int, int]:
    """``(sep, has_header, n_columns, skip_lines)`` by the rules in the module docstring."""
    path = Path(path)
    lines = _first_lines(path)
    line, lineno = lines[0]
    if sep is None:
        sep = next((s for s in _SEPARATORS if s in line), None)
        if sep is None:
            raise DatasetFormatError(path, f"cannot find a separator ({_SEPARATORS!r}) in {line[:80]!r}", line=lineno)
    fields = line.split(sep)
    if not 2 <= len(fields) <= 4:
        raise DatasetFormatError(path, f"expected 2 to 4 columns (user, item[, rating[, timestamp]]) separated "
                                       f"by {sep!r}, got {len(fields)}: {line[:80]!r}", line=lineno)
    if header is None:
        header = _looks_like_header(fields, lines[1][0].split(sep) if len(lines) > 1 else None)
    return sep, bool(header), len(fields), lineno if header else 0


def read_delimited(path, sep: Optional[str] = None, header: Optional[bool] = None, *,
                   bad_lines=None):
    """``(user, item, rating or None, timestamp or None)`` of a delimited file.

    ``user`` / ``item`` hold the file's ids: int64 arrays when every id of the column is a
    non-negative integer, else gnn.data.tokens.TokenIds. ``bad_lines`` (a
    gnn.data.badlines.BadLines) skips malformed lines and records them instead of raising.
    """
    path = Path(path)
    if file_is_empty(path):
        raise DatasetFormatError(path, "the file is empty")
    sep, header, ncols, skip = sniff(path, sep, header)
    # "I": integers, or text when any id of the column is not one (read again, as strings)
    cols = read_columns(path, sep, "IIfi"[:ncols], _COLUMNS[:ncols], skip_lines=skip, bad_lines=bad_lines)
    if len(cols[0]) == 0:
        if bad_lines is not None and bad_lines.count:
            raise DatasetFormatError(path, f"no interactions: every line is malformed ({bad_lines})")
        line, lineno = _first_lines(path, 1)[0]
        raise DatasetFormatError(path, f"no interactions after the header {line[:80]!r} (a first line "
                                       f"without numbers is read as a header; pass header=False if "
                                       f"it is data)", line=lineno)
    rating = cols[2].astype(np.float32) if ncols >= 3 else None
    timestamp = cols[3] if ncols >= 4 else None
    return cols[0], cols[1], rating, timestamp
