"""MovieLens: the releases, their file formats and their parsers.

=================  ==========  ========================  =================================
release            folder      ratings                   titles
=================  ==========  ========================  =================================
ml-100k            ml-100k     u.data (tab, no header)   u.item (``|``, Latin-1, field 2)
ml-1m              ml-1m       ratings.dat (``::``)      movies.dat (Latin-1)
ml-10m             ml-10M100K  ratings.dat (``::``)      movies.dat (UTF-8)
ml-20m/25m/32m,    ml-<name>   ratings.csv (header       movies.csv (UTF-8, quoted titles)
ml-latest(-small)              userId,movieId,rating,
                               timestamp)
=================  ==========  ========================  =================================

Ratings are stars: 1..5 in ml-100k and ml-1m, 0.5..5 in half stars elsewhere; anything outside
0.5..5 is rejected as a corrupt file. Titles files are decoded as UTF-8 when they are valid
UTF-8 and as Latin-1 otherwise (ml-1m and ml-100k are Latin-1, ml-10m is UTF-8; a Latin-1 file
with accents is never valid UTF-8 in practice, so the rule needs no per-release table).
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import DatasetFormatError
from .fastcsv import file_is_empty, read_columns

__all__ = ["Release", "RELEASES", "find_release_dir", "read_movielens_dir", "read_ratings", "read_titles"]


@dataclass(frozen=True)
class Release:
    """One MovieLens release as GroupLens publishes it."""

    name: str
    folder: str            # top-level folder inside the zip
    ratings: str           # ratings file inside the folder
    titles: str            # movies file inside the folder
    md5: Optional[str]     # pinned MD5 of the zip; None: check the .md5 served beside it
    file_sha256: tuple = ()  # optional pins of extracted files: ((name, sha256), ...)

    @property
    def zip_name(self) -> str:
        return f"{self.name}.zip"


# MD5s of the zips: the values GroupLens publishes in ``<zip>.md5`` beside each archive (the same
# values are pinned by TensorFlow's and other public loaders). ml-latest and ml-latest-small are
# regenerated under the same name, so no archive checksum can be pinned: the downloader checks
# the ``.md5`` served by the same server, and for ml-latest-small (frozen since 2018) also the
# SHA-256 of the two files we read, as recorded next to the project's copy of the data.
RELEASES = {
    r.name: r
    for r in [
        Release("ml-100k", "ml-100k", "u.data", "u.item", "0e33842e24a9c977be4e0107933c0723"),
        Release("ml-1m", "ml-1m", "ratings.dat", "movies.dat", "c4d9eecfca2ab87c1945afe126590906"),
        Release("ml-10m", "ml-10M100K", "ratings.dat", "movies.dat", "ce571fd55effeba0271552578f2648bd"),
        Release("ml-20m", "ml-20m", "ratings.csv", "movies.csv", "cd245b17a1ae2cc31bb14903e1204af3"),
        Release("ml-25m", "ml-25m", "ratings.csv", "movies.csv", "6b51fb2759a8657d3bfcbfc42b592ada"),
        Release("ml-32m", "ml-32m", "ratings.csv", "movies.csv", "d472be332d4daa821edc399621853b57"),
        Release("ml-latest", "ml-latest", "ratings.csv", "movies.csv", None),
        Release("ml-latest-small", "ml-latest-small", "ratings.csv", "movies.csv", None, (
            ("ratings.csv", "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646"),
            ("movies.csv", "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07"),
        )),
    ]
}

# (ratings file, titles file) of each on-disk layout, in detection order.
_LAYOUTS = [("ratings.csv", "movies.csv"), ("ratings.dat", "movies.dat"), ("u.data", "u.item")]
_CSV_HEADER = ["userId", "movieId", "rating", "timestamp"]
RATING_RANGE = (0.5, 5.0)


def find_release_dir(root: Path, release: Release) -> Optional[Path]:
    """The folder under ``root`` holding ``release``'s ratings file, or None.

    Accepts ``root/<name>`` and ``root/<zip folder>`` (they differ for ml-10m: ml-10M100K).
    """
    for folder in dict.fromkeys([release.name, release.folder]):
        d = Path(root) / folder
        if (d / release.ratings).is_file():
            return d
    return None


def detect_layout(folder: Path) -> Optional[tuple[str, str]]:
    """(ratings file, titles file) names of the MovieLens layout found in ``folder``, or None."""
    for ratings, titles in _LAYOUTS:
        if (Path(folder) / ratings).is_file():
            return ratings, titles
    return None


def read_ratings(path, *, bad_lines=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(user, movie, rating, timestamp) of a MovieLens ratings file, format chosen by its name.

    ``bad_lines`` (gnn.data.badlines.BadLines): skip malformed lines and ratings outside the
    range, recording them there, instead of raising.
    """
    path = Path(path)
    if file_is_empty(path):
        raise DatasetFormatError(path, "the file is empty")
    names = ["userId", "movieId", "rating", "timestamp"]
    if path.name.endswith(".csv"):
        with open(path, "rb") as f:
            head = f.readline().decode("utf-8-sig", "replace").strip()
        if head.split(",") != _CSV_HEADER:
            raise DatasetFormatError(
                path, f"missing or wrong header: expected {','.join(_CSV_HEADER)!r}, got {head[:80]!r}",
                line=1)
        u, i, r, t = read_columns(path, ",", "iifi", names, skip_lines=1, bad_lines=bad_lines)
    elif path.name.endswith(".dat"):
        u, i, r, t = read_columns(path, "::", "iifi", names, bad_lines=bad_lines)
    else:  # u.data
        u, i, r, t = read_columns(path, "\t", "iifi", names, bad_lines=bad_lines)
    if len(u) == 0:
        raise DatasetFormatError(path, "no ratings (only a header)" if not (bad_lines and bad_lines.count)
                                 else f"no ratings: every line is malformed ({bad_lines})")
    bad = ~((r >= RATING_RANGE[0]) & (r <= RATING_RANGE[1]))
    if bad.any():
        rows = np.flatnonzero(bad)
        why = f"outside the MovieLens range {RATING_RANGE[0]}..{RATING_RANGE[1]}"
        if bad_lines is None:
            raise DatasetFormatError(path, f"rating {r[rows[0]]} {why}", line=_lines_of_rows(path, rows[:1])[0])
        skipped = set(bad_lines.all_lines())
        bad_lines.extend((line, f"rating {r[row]} {why}")
                         for line, row in zip(_lines_of_rows(path, rows, skipped), rows))
        u, i, r, t = u[~bad], i[~bad], r[~bad], t[~bad]
    return u, i, r.astype(np.float32), t


def _lines_of_rows(path: Path, rows, skipped=frozenset()) -> list[int]:
    """1-based lines of the data rows ``rows`` (ascending): lines that are not the header, empty
    or in ``skipped`` count as rows (slow; only for messages)."""
    header = 1 if path.name.endswith(".csv") else 0
    want = iter(int(x) for x in rows)
    target, seen, out = next(want, None), -1, []
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, start=1):
            if target is None:
                break
            if lineno <= header or lineno in skipped or line.rstrip(b"\n") in (b"", b"\r"):
                continue
            seen += 1
            if seen == target:
                out.append(lineno)
                target = next(want, None)
    return out


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_titles(path) -> dict:
    """``{movie id: title}`` from movies.csv, movies.dat or u.item."""
    path = Path(path)
    text = _decode(path)
    titles = {}
    if path.name.endswith(".csv"):
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["movieId", "title"]:
            raise DatasetFormatError(path, f"missing header 'movieId,title,genres', got {header!r}", line=1)
        for row in reader:
            if not row:
                continue
            if len(row) != 3:
                raise DatasetFormatError(path, f"expected 3 fields (movieId,title,genres), got {len(row)}",
                                         line=reader.line_num)
            titles[_movie_id(path, row[0], reader.line_num)] = row[1]
        return titles
    sep = "::" if path.name.endswith(".dat") else "|"
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if sep == "::":  # id::title::genres; split at both ends so a title may hold '::'
            head, sep1, rest = line.partition("::")
            title, sep2, _genres = rest.rpartition("::")
            ok = bool(sep1 and sep2)
        else:  # u.item: id|title|release date|video date|url|19 genre flags
            fields = line.split("|")
            ok = len(fields) >= 2
            head, title = (fields + [""])[:2]
        if not ok:
            raise DatasetFormatError(path, f"expected fields separated by {sep!r}: {line[:80]!r}", line=lineno)
        titles[_movie_id(path, head, lineno)] = title
    return titles


def _movie_id(path, text: str, line: int) -> int:
    t = text.strip()
    if not t.isdigit():
        raise DatasetFormatError(path, f"movie id {text!r} is not a non-negative integer", line=line)
    return int(t)


def read_movielens_dir(folder, ratings: Optional[str] = None, titles: Optional[str] = None, *,
                       bad_lines=None):
    """Parse a MovieLens folder: ``(user, movie, rating, timestamp, titles dict or None)``.

    ``bad_lines`` (gnn.data.badlines.BadLines, its path set to the ratings file here) skips
    malformed ratings lines instead of raising; the titles file is always read strictly.
    """
    folder = Path(folder)
    if ratings is None:
        layout = detect_layout(folder)
        if layout is None:
            raise DatasetFormatError(folder, "no MovieLens ratings file (ratings.csv, ratings.dat or u.data)")
        ratings, titles = layout
    if bad_lines is not None:
        bad_lines.path = os.fspath(folder / ratings)
    u, i, r, t = read_ratings(folder / ratings, bad_lines=bad_lines)
    names = read_titles(folder / titles) if titles and (folder / titles).is_file() else None
    return u, i, r, t, names
