"""Reading a text file block by block for gnn.data.fastcsv: whole lines, in file order.

A block is a ``bytearray`` of whole lines behind ``PAD`` zero bytes, read straight into its own
buffer. :func:`parsed_blocks` runs a parser over the blocks, in threads (numpy releases the GIL)
with results kept in file order, and in skip mode hands refused blocks to gnn.data.badlines.
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

from .badlines import parse_skipping
from .errors import DatasetFormatError

__all__ = ["PAD", "skip_bom", "blocks", "default_workers", "parsed_blocks", "file_is_empty"]

# Bytes in front of each block, so that a right-aligned window of any accepted width never
# starts before the buffer (NUL is neither a digit, a separator nor a newline).
PAD = 24
_UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff")  # UTF-16 LE / BE (and the start of UTF-32 LE)


def skip_bom(f, path) -> None:
    """Move past a UTF-8 byte-order mark (Excel writes one); refuse UTF-16/32 text."""
    head = f.read(3)
    if head.startswith(_WIDE_BOMS):
        raise DatasetFormatError(path, "the file is UTF-16 or UTF-32 encoded; save it as UTF-8 "
                                       "(or ASCII) text", line=1)
    f.seek(3 if head == _UTF8_BOM else 0)


def blocks(f, block_size: int) -> Iterator[bytearray]:
    """Yield chunks of ``f`` that end at a newline, each behind ``PAD`` zero bytes.

    The file is read straight into the block's own buffer (``readinto``), so that a block costs
    one copy from the OS; a missing final newline is supplied.
    """
    rest = b""
    while True:
        buf = bytearray(PAD + len(rest) + block_size)
        buf[PAD:PAD + len(rest)] = rest
        got = f.readinto(memoryview(buf)[PAD + len(rest):])
        end = PAD + len(rest) + got
        if got == 0:
            break
        cut = buf.rfind(b"\n", PAD, end)
        if cut < 0:  # a line longer than a block: keep reading
            rest = bytes(buf[PAD:end])
            continue
        rest = bytes(buf[cut + 1:end])
        del buf[cut + 1:]
        yield buf
    if rest:
        yield bytearray(PAD) + rest + b"\n"


def default_workers() -> int:
    # numpy releases the GIL inside these array operations, so blocks parse in parallel threads;
    # at most 4, since each block in flight holds about ten times its size in temporaries.
    return max(1, min(4, os.cpu_count() or 1))


def parsed_blocks(f, parse, block_size: int, workers: int, line0: int, skip_ids):
    """``(results, bad lines)`` of ``parse(block, first line)`` over the blocks of ``f``, in file
    order. ``skip_ids`` None: the first malformed line raises; else such lines are skipped and
    listed (gnn.data.badlines), except a NotAnIntegerError of the columns ``skip_ids`` names."""
    def task(block, first):
        if skip_ids is None:
            return [parse(block, first)], ()
        return parse_skipping(parse, block, first, PAD, skip_ids)

    if workers == 1:
        for block in blocks(f, block_size):
            yield task(block, line0)
            line0 += block.count(b"\n")
        return
    with ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()
        for block in blocks(f, block_size):
            pending.append(pool.submit(task, block, line0))
            line0 += block.count(b"\n")
            while len(pending) > workers:  # results in file order: the first error wins
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def file_is_empty(path) -> bool:
    """True when the file has no bytes other than whitespace."""
    if os.path.getsize(path) == 0:
        return True
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 16)
            if not chunk:
                return True
            if chunk.strip():
                return False
