"""Skipping malformed lines (``load_dataset(..., on_bad_line="skip")``, ``--skip-bad-lines``).

The default is ``"error"``: the first malformed line stops the load with its file, line and
reason. With ``"skip"`` a block of lines that the vectorised parser refuses is cut in two at a
line boundary and each half parsed again, down to single lines; a single line that still fails is
skipped and recorded. The same parser decides what is malformed in both modes, so a skipped line
is exactly a line that would have stopped the load; k bad lines in a block of n cost about
``n log2(k)`` bytes parsed again, not ``n k``.
"""
from __future__ import annotations

import bisect
import os
from typing import Callable, Optional

import numpy as np

from .errors import DatasetFormatError, NotAnIntegerError

__all__ = ["ON_BAD_LINE", "BadLines", "check_on_bad_line", "bad_line_report", "parse_skipping"]

ON_BAD_LINE = ("error", "skip")


class BadLines:
    """The malformed lines skipped in one file (``path``): ``count``, the first ``SHOWN`` line
    numbers (``lines``, 1-based, ascending) and why the first of them was refused
    (``first_reason``); ``str()`` says all that in one line."""

    SHOWN = 5

    def __init__(self, path):
        self.path = os.fspath(path)
        self._lines: list[int] = []  # every skipped line (parsers report them in file order)
        self._reasons: dict[int, str] = {}

    def add(self, line: int, reason: str) -> None:
        bisect.insort(self._lines, line)
        if len(self._reasons) < 4 * self.SHOWN:
            self._reasons[line] = reason

    def extend(self, found) -> None:
        for line, reason in found:
            self.add(line, reason)

    def all_lines(self) -> list[int]:
        return list(self._lines)

    @property
    def count(self) -> int:
        return len(self._lines)

    @property
    def lines(self) -> list[int]:
        return self._lines[:self.SHOWN]

    @property
    def first_reason(self) -> str:
        return self._reasons.get(self._lines[0], "") if self._lines else ""

    def __str__(self) -> str:
        n = self.count
        shown = ", ".join(map(str, self.lines)) + (", ..." if n > self.SHOWN else "")
        which = f"lines {shown}; line {self._lines[0]}" if n > 1 else f"line {shown}"
        return (f"{self.path}: skipped {n} malformed line{'s' if n != 1 else ''} "
                f"({which}: {self.first_reason})")

    def __repr__(self) -> str:
        return f"BadLines({self.path!r}, count={self.count}, lines={self.lines})"


def check_on_bad_line(on_bad_line: str) -> None:
    if on_bad_line not in ON_BAD_LINE:
        raise ValueError(f"on_bad_line must be 'error' or 'skip', but got {on_bad_line!r}")


def bad_line_report(on_bad_line: str, path) -> Optional[BadLines]:
    """A :class:`BadLines` to collect into for ``"skip"``, None for ``"error"``."""
    check_on_bad_line(on_bad_line)
    return BadLines(path) if on_bad_line == "skip" else None


def parse_skipping(parse: Callable, block: bytearray, line0: int, pad: int,
                   id_columns=()) -> tuple[list, list]:
    """``(results, bad)``: ``parse(block, line0)`` on the parts of ``block`` without its bad lines.

    ``block`` holds whole lines behind ``pad`` leading bytes; ``bad`` lists ``(line, reason)``
    in file order. A NotAnIntegerError in one of ``id_columns`` is not a bad line (the reader
    reads that column again as text) and is raised.
    """
    try:
        return [parse(block, line0)], []
    except NotAnIntegerError as exc:
        if exc.column in id_columns:
            raise
        err = exc
    except DatasetFormatError as exc:
        err = exc
    body = bytes(block[pad:])
    n_lines = body.count(b"\n")
    if n_lines <= 1:
        return [], [(line0 + 1, err.reason)]
    half = n_lines // 2
    cut = int(np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == 10)[half - 1]) + 1
    head = parse_skipping(parse, bytearray(pad) + body[:cut], line0, pad, id_columns)
    tail = parse_skipping(parse, bytearray(pad) + body[cut:], line0 + half, pad, id_columns)
    return head[0] + tail[0], head[1] + tail[1]
