"""Exceptions raised by gnn.data.

Every problem with a file's content is a :class:`DatasetFormatError` that names the file and,
where there is one, the 1-based line, so that a bad input is never loaded as a silently wrong
dataset. Problems getting the files are :class:`DatasetNotFoundError` (nothing local and no
download allowed) or :class:`DownloadError` (the fetch or its verification failed).
"""
from __future__ import annotations

import os

__all__ = ["DatasetFormatError", "DatasetNotFoundError", "DownloadError", "ChecksumError"]


class DatasetFormatError(ValueError):
    """A dataset file is malformed. ``path`` and ``line`` (1-based, or None) say where."""

    def __init__(self, path, message: str, line: int | None = None):
        self.path = os.fspath(path) if path is not None else None
        self.line = line
        self.reason = message
        where = self.path or "<data>"
        if line is not None:
            where = f"{where}, line {line}"
        super().__init__(f"{where}: {message}")


class NotAnIntegerError(DatasetFormatError):
    """A field of an integer column is not a non-negative integer (``column`` names it).

    Raised by the parser for id columns that may hold strings instead: the reader catches it and
    reads that column again as text (gnn.data.tokens), so the user sees it only for columns that
    must be integers (timestamps, MovieLens ids).
    """

    def __init__(self, path, message: str, line: int | None = None, column: str | None = None):
        super().__init__(path, message, line)
        self.column = column


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are not on disk and could not (or may not) be downloaded."""


class DownloadError(OSError):
    """Fetching an archive failed; the message says which URL to fetch by hand and where to put it."""


class ChecksumError(DownloadError):
    """A downloaded file's digest differs from the pinned (or published) one."""
