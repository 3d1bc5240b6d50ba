"""Vectorised numpy parsing of delimited text (the fast path under every loader).

Python's csv module and ``float()`` per field manage ~1M fields/s; MovieLens 25M has 100M
fields. Instead each block of whole lines is viewed as a uint8 array and handled with array
operations only: find separators and newlines, check every line has the expected number of
fields, gather each field's bytes into a right-aligned ``(rows, width)`` window and accumulate
the digits column by column. Anything the vectorised path does not accept is re-checked field
by field, so that the error names the file, the 1-based line and the offending text.

Accepted syntax: integers are ``[0-9]+`` (at most 18 digits, ids are non-negative); floats are
``-?[0-9]*.?[0-9]*`` with at least one digit, and anything else Python's ``float()`` accepts
(``1e3``), except NaN and infinities, which are rejected. A field may be wrapped in double
quotes (``"5"``, as spreadsheets and R write numbers); the quotes are dropped, a separator inside
them is not supported. Lines end in LF or CRLF; the last line may lack its newline; empty lines
are skipped (they carry no data). A UTF-8 byte-order mark at the start of the file is skipped;
a UTF-16/32 one is refused with a message saying so.

Id columns may hold text instead (kind ``"I"``): they are parsed as integers, and the first
field that is not one (or has a leading zero) sends that column back to be read as text
(gnn.data.tokens). Files are read block by block (gnn.data.blocks); ``bad_lines`` skips the
lines the parser refuses instead of raising (gnn.data.badlines).
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np

from .badlines import BadLines
from .blocks import PAD as _PAD
from .blocks import default_workers, file_is_empty, parsed_blocks, skip_bom
from .errors import DatasetFormatError, NotAnIntegerError
from .swar import combine, field_words, non_digits
from .tokens import merge_tokens, parse_tokens

__all__ = ["read_columns", "read_int_tokens", "file_is_empty", "DEFAULT_BLOCK_SIZE"]

#: Bytes read per block: bounds the temporaries (about 10x the block) for any file size.
DEFAULT_BLOCK_SIZE = 1 << 24

_MAX_INT_DIGITS = 18  # 10**18 < 2**63
_MAX_FAST_FLOAT = 15  # mantissas below 10**15 < 2**53 are exact in float64
_NL, _CR, _QUOTE = 10, 13, 34


def _padded(block: bytearray) -> np.ndarray:
    return np.frombuffer(block, dtype=np.uint8)


def _text(buf: np.ndarray, s: int, e: int) -> str:
    return bytes(buf[s:e]).decode("utf-8", "replace")


class _Block:
    """One block of whole lines: positions are indices into the padded buffer ``buf``."""

    def __init__(self, block: bytes, line0: int, path):
        self.buf = _padded(block)
        self.path = path
        self.line0 = line0  # lines of the file before this block
        nl = np.flatnonzero(self.buf == _NL)
        start = np.empty_like(nl)
        start[:1] = _PAD
        start[1:] = nl[:-1] + 1
        end = nl - (self.buf[nl - 1] == _CR)  # CRLF: the CR is not part of the last field
        end = np.maximum(end, start)
        self.n_lines = len(nl)
        keep = end > start  # empty lines carry no data and are skipped
        self.blank = None if keep.all() else ~keep
        self.nl, self.start, self.end = nl, start, end
        if self.blank is not None:
            self.rows = np.flatnonzero(keep)
            self.row_nl, self.row_start, self.row_end = nl[keep], start[keep], end[keep]
        else:
            self.rows = None
            self.row_nl, self.row_start, self.row_end = nl, start, end

    def line_of_row(self, r: int) -> int:
        return self.line0 + 1 + int(r if self.rows is None else self.rows[r])

    def fail(self, row: int, message: str, column: str | None = None):
        """Raise for data row ``row``; with ``column``, a NotAnIntegerError naming the column."""
        if column is not None:
            raise NotAnIntegerError(self.path, message, line=self.line_of_row(row), column=column)
        raise DatasetFormatError(self.path, message, line=self.line_of_row(row))


def _sep_mask(buf: np.ndarray, sep: bytes) -> np.ndarray:
    if len(sep) == 1:
        return buf == sep[0]
    if len(sep) == 2:  # e.g. '::' in MovieLens .dat files
        m = np.zeros(len(buf), dtype=bool)
        np.logical_and(buf[:-1] == sep[0], buf[1:] == sep[1], out=m[:-1])
        return m
    raise ValueError(f"separator must be 1 or 2 bytes, but got {sep!r}")


def _field_bounds(blk: _Block, sep: bytes, ncols: int):
    """Per column, (starts, ends) 1-D position arrays; raises on a wrong field count."""
    buf = blk.buf
    is_sep = _sep_mask(buf, sep)
    if blk.blank is None:
        is_end = is_sep | (buf == _NL)
    else:  # newlines of empty lines are not row ends
        is_end = is_sep.copy()
        is_end[blk.row_nl] = True
    d = np.flatnonzero(is_end)
    n = len(blk.row_nl)
    ok = len(d) == n * ncols
    if ok:
        dd = d.reshape(n, ncols)
        ok = bool((buf[dd[:, -1]] == _NL).all())
    if not ok:  # slow path, only to name the first bad line
        seps = np.flatnonzero(is_sep)
        counts = np.bincount(np.searchsorted(blk.row_nl, seps), minlength=n)[:n]
        bad = np.flatnonzero(counts != ncols - 1)
        r = int(bad[0]) if len(bad) else 0
        line = _text(buf, blk.row_start[r], blk.row_end[r])
        hint = " (a separator inside quotes is not supported)" if '"' in line else ""
        blk.fail(r, f"expected {ncols} fields separated by {sep.decode()!r} but found "
                    f"{int(counts[r]) + 1}{hint}: {line!r}")
    starts = [blk.row_start] + [dd[:, c - 1] + len(sep) for c in range(1, ncols)]
    ends = [dd[:, c] for c in range(ncols - 1)] + [blk.row_end]
    return starts, ends


def _parse_ints(blk, s: np.ndarray, e: np.ndarray, name: str) -> np.ndarray:
    n = len(s)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    length = e - s
    if int(length.max()) > _MAX_INT_DIGITS or int(length.min()) <= 0:
        r = int(np.flatnonzero((length > _MAX_INT_DIGITS) | (length <= 0))[0])
        empty = length[r] <= 0
        what = "is empty" if empty else f"has more than {_MAX_INT_DIGITS} digits"
        blk.fail(r, f"column {name!r} {what}: {_text(blk.buf, s[r], e[r])!r}", None if empty else name)
    words = field_words(blk.buf, e, length, -(-int(length.max()) // 8))
    bad = None
    for word in words:
        nd = non_digits(word)
        bad = nd if bad is None else bad | nd
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        blk.fail(r, f"column {name!r}: expected a non-negative integer, got "
                    f"{_text(blk.buf, s[r], e[r])!r}", name)
    return combine(words)


_POW10 = 10 ** np.arange(19, dtype=np.int64)


def _parse_floats(blk, s: np.ndarray, e: np.ndarray, name: str) -> np.ndarray:
    n = len(s)
    out = np.zeros(n, dtype=np.float64)
    if n == 0:
        return out
    length = e - s
    n_words = 2 if int(length.max()) > 8 else 1
    width = 8 * n_words
    slow = (length > _MAX_FAST_FLOAT) | (length <= 0)
    words = field_words(blk.buf, e, np.clip(length, 0, width), n_words)
    # Bytes that are not digits: a '.' or a leading '-' is understood here; anything else
    # sends the row to the slow path. Few rows have them, so look at those bytes one by one.
    raw = np.stack(words, axis=1).view(np.uint8)  # (n, width), first byte first
    pos = np.flatnonzero(np.stack([non_digits(w) for w in words], axis=1).view(np.uint8))
    row, col = pos // width, pos % width
    byte = raw.reshape(-1)[pos]
    is_dot = byte == 46
    is_minus = (byte == 45) & (col == width - length[row])
    slow[row[~(is_dot | is_minus)]] = True
    n_dot = np.bincount(row[is_dot], minlength=n)
    n_special = n_dot + np.bincount(row[is_minus], minlength=n)
    slow |= (n_dot > 1) | (n_special >= length)  # two dots, or no digit at all
    raw.reshape(-1)[pos] = 48  # the dot and the sign become zeros
    v = combine([raw.view("<u8")[:, k] for k in range(n_words)])
    frac = np.zeros(n, dtype=np.int64)
    frac[row[is_dot]] = width - 1 - col[is_dot]
    p = _POW10[np.minimum(frac, 18)]
    has_dot = np.zeros(n, dtype=bool)
    has_dot[row[is_dot]] = True
    mant = np.where(has_dot, (v // (p * 10)) * p + v % p, v)
    out[:] = mant / p
    neg = np.zeros(n, dtype=bool)
    neg[row[is_minus]] = True
    out[neg] = -out[neg]
    for r in np.flatnonzero(slow):  # rare syntax (1e3, +2, long mantissas): one by one
        text = _text(blk.buf, s[r], e[r])
        try:
            val = float(text)
        except ValueError:
            blk.fail(int(r), f"column {name!r}: expected a number, got {text!r}")
        if not math.isfinite(val):
            blk.fail(int(r), f"column {name!r}: {text!r} is not a finite number")
        out[r] = val
    return out


def _unquote(blk: _Block, s: np.ndarray, e: np.ndarray, name: str):
    """Field bounds without the double quotes around a field (``"5"`` reads as ``5``)."""
    nonempty = e > s
    opens = (blk.buf[s] == _QUOTE) & nonempty
    closes = (blk.buf[np.maximum(e - 1, s)] == _QUOTE) & nonempty
    if not (opens.any() or closes.any()):  # the common case: no quotes in this column
        return s, e
    quoted = opens & closes & (e - s >= 2)
    bad = np.flatnonzero((opens | closes) & ~quoted)
    if len(bad):
        r = int(bad[0])
        blk.fail(r, f"column {name!r}: unbalanced double quote in {_text(blk.buf, s[r], e[r])!r}")
    return s + quoted, e - quoted


def _parse_ids(blk, s: np.ndarray, e: np.ndarray, name: str) -> np.ndarray:
    """An id column as integers; a leading zero makes it text (``007`` is not the id ``7``)."""
    out = _parse_ints(blk, s, e, name)
    zero = (blk.buf[s] == 48) & (e - s > 1)
    if zero.any():
        r = int(np.flatnonzero(zero)[0])
        blk.fail(r, f"column {name!r}: {_text(blk.buf, s[r], e[r])!r} has a leading zero", name)
    return out


_PARSERS = {"i": _parse_ints, "I": _parse_ids, "f": _parse_floats, "t": parse_tokens}


def _parse_block(block: bytes, line0: int, path, sep: bytes, kinds, names) -> list:
    blk = _Block(block, line0, path)
    starts, ends = _field_bounds(blk, sep, len(kinds))
    out = []
    for c, k in enumerate(kinds):
        if k == "-":  # a column that is not read
            out.append(None)
            continue
        s, e = _unquote(blk, starts[c], ends[c], names[c])
        out.append(_PARSERS[k](blk, s, e, names[c]))
    return out


def read_columns(path, sep: bytes | str, kinds: Sequence[str], names: Sequence[str], *,
                 skip_lines: int = 0, block_size: int = DEFAULT_BLOCK_SIZE,
                 workers: int | None = None, bad_lines: BadLines | None = None) -> list:
    """Parse a delimited file into one array per column.

    Args:
        path: the file.
        sep: the field separator, 1 or 2 bytes (``","``, ``"\\t"``, ``"::"``).
        kinds: per column ``"i"`` (int64), ``"f"`` (float64), ``"t"`` (text ids: a
            gnn.data.tokens.TokenIds), ``"I"`` (ids: int64 when every field is a non-negative
            integer without a leading zero, else read as ``"t"``) or ``"-"`` (not read: None).
        names: per column, a name used in error messages.
        skip_lines: lines at the top not parsed (a header); they still count for line numbers.
        block_size: bytes per block; memory stays O(workers * block_size) besides the result.
        workers: threads parsing blocks (default: CPU count, at most 4).
        bad_lines: a gnn.data.badlines.BadLines: malformed lines are skipped and recorded there
            instead of raising.

    Raises:
        DatasetFormatError: a line with another number of fields, an empty or non-numeric
            field, a NaN; the message names the file and the 1-based line (the first bad line
            of the file, whichever thread found it).
    """
    kinds, names = list(kinds), list(names)
    while True:
        try:
            return _read_columns(path, sep, kinds, names, skip_lines, block_size, workers, bad_lines)
        except NotAnIntegerError as exc:
            if exc.column not in names or kinds[names.index(exc.column)] != "I":
                raise
            kinds[names.index(exc.column)] = "t"  # ids that are not all integers: read as text


def _read_columns(path, sep, kinds, names, skip_lines, block_size, workers, bad_lines) -> list:
    sep = sep.encode() if isinstance(sep, str) else sep
    parse = functools.partial(_parse_block, path=path, sep=sep, kinds=kinds, names=names)
    skip_ids = None if bad_lines is None else tuple(n for n, k in zip(names, kinds) if k == "I")
    parts: list[list] = [[] for _ in kinds]
    bad: list = []
    with open(path, "rb") as f:
        skip_bom(f, path)
        line0 = sum(1 for _ in range(skip_lines) if f.readline())
        for results, found in parsed_blocks(f, parse, block_size, workers or default_workers(),
                                             line0, skip_ids):
            bad.extend(found)
            for cols in results:
                for c, col in enumerate(cols):
                    parts[c].append(col)
    if bad_lines is not None:
        bad_lines.extend(bad)
    return [_column(p, k, path, name) for p, k, name in zip(parts, kinds, names)]


def _column(parts: list, kind: str, path, name: str):
    if kind == "-":
        return None
    if kind == "t":
        return merge_tokens(parts, path, name)
    dtype = np.float64 if kind == "f" else np.int64
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def _int_tokens_block(block: bytearray, line0: int, path) -> tuple[np.ndarray, np.ndarray]:
    blk = _Block(block, line0, path)
    buf = blk.buf
    ws = (buf == 32) | (buf == 9) | (buf == _CR) | (buf == _NL) | (buf == 0)
    # a token starts after whitespace and ends before whitespace; the pad and the final
    # newline guarantee both neighbours exist.
    s = np.flatnonzero(ws[:-1] & ~ws[1:]) + 1
    e = np.flatnonzero(~ws[:-1] & ws[1:]) + 1
    line = line0 + 1 + np.searchsorted(blk.nl, s)
    return _parse_ints(_TokenRows(blk, line), s, e, "id"), line


def read_int_tokens(path, *, block_size: int = DEFAULT_BLOCK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """All whitespace-separated integer tokens of a file and the 1-based line of each.

    Used for the LightGCN/NGCF ``uid item item ...`` format, whose lines have any length.
    """
    values, lines = [], []
    parse = functools.partial(_int_tokens_block, path=path)
    with open(path, "rb") as f:
        skip_bom(f, path)
        for results, _ in parsed_blocks(f, parse, block_size, 1, 0, None):
            for v, line in results:
                values.append(v)
                lines.append(line)
    if not values:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(values), np.concatenate(lines)


class _TokenRows:
    """Adapter giving _parse_ints a ``fail(row)`` that reports the token's line."""

    def __init__(self, blk: _Block, line: np.ndarray):
        self.buf, self.path, self._line = blk.buf, blk.path, line

    def fail(self, row: int, message: str, column: str | None = None):
        if column is not None:
            raise NotAnIntegerError(self.path, message, line=int(self._line[row]), column=column)
        raise DatasetFormatError(self.path, message, line=int(self._line[row]))
