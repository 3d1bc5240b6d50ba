"""``load_dataset``: from a name or a path to a :class:`SplitDataset`.

What a name or path means (names win over paths; write ``./gowalla`` for a folder of that name):

- a MovieLens release (``ml-latest-small``, ``ml-latest``, ``ml-100k``, ``ml-1m``, ``ml-10m``,
  ``ml-20m``, ``ml-25m``, ``ml-32m``): found under ``data_root(root)`` or downloaded there;
- ``gowalla``, ``yelp2018``, ``amazon-book``: the NGCF/LightGCN split, a folder
  ``data_root(root)/<name>`` with ``train.txt`` and ``test.txt`` (not downloaded);
- a folder with ``train.txt`` and ``test.txt`` (given split), or holding a MovieLens release;
- a RecBole atomic file ``<name>.inter``, or a folder holding one (gnn.data.atomic);
- a delimited file ``user,item[,rating[,timestamp]]`` (see gnn.data.delimited for the rules);
  ids may be any text (``user_0000``), mapped to contiguous ids and back.

Implicit feedback: every rating is an interaction unless ``min_rating`` keeps only ratings
``>= min_rating`` (filtered before anything else). Repeated (user, item) pairs collapse into one
(latest timestamp, highest rating). Ids are remapped to ``0..n-1`` in ascending original id
(string order for text ids); ``user_ids`` / ``item_ids`` keep the originals.

Malformed lines stop the load with the file, line and reason, unless ``on_bad_line="skip"``:
then they are skipped, and ``dataset.bad_lines`` (also logged once, logger ``gnn.data``) says
how many and which (gnn.data.badlines).

Splits (``split=``):

- ``"random"``, ``"temporal"``: per user, cut by ``ratios = (train, valid, test)``
  (gnn.data.splits has the rounding rule); ``valid`` is None when ``ratios[1] == 0``.
- ``"loo"``: leave one out per user (latest by timestamp, else random); ``ratios`` only decides
  whether there is a validation item (``ratios[1] > 0``).
- ``"given"``: the text format's own train/test, ``valid`` None (paper reproduction). Asking a
  text-format dataset for ``"random"`` or ``"loo"`` keeps ``test.txt`` as the test part and carves
  the validation part out of each user's ``train.txt`` items: ``"random"`` moves the fraction
  ``ratios[1] / (ratios[0] + ratios[1])``, ``"loo"`` one item; ``protocol`` stays ``"given"``.
  ``"temporal"`` needs timestamps, which the text format does not have.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np

from .atomic import inter_files, read_atomic
from .badlines import bad_line_report, check_on_bad_line
from .dataset import Interactions, SplitDataset, collapse_duplicates, remap_ids
from .delimited import read_delimited
from .download import download_movielens
from .errors import DatasetNotFoundError
from .movielens import RELEASES, detect_layout, read_movielens_dir
from .paths import data_root
from .splits import split_leave_one_out, split_random, split_temporal
from .textformat import read_given_split

__all__ = ["load_dataset", "load_interactions", "split_interactions", "DATASETS", "TEXT_DATASETS"]

#: Datasets in the NGCF/LightGCN text format, and where to get their files.
TEXT_DATASETS = {
    name: f"https://github.com/kuandeng/LightGCN/tree/master/Data/{name}"
    for name in ("gowalla", "yelp2018", "amazon-book")
}
#: Every dataset name ``load_dataset`` knows.
DATASETS = sorted(RELEASES) + sorted(TEXT_DATASETS)
SPLITS = ("random", "temporal", "loo", "given")
log = logging.getLogger("gnn.data")


def _resolve(name_or_path, root, download: bool, base_url):
    """``(kind, path, name)``, kind ``"movielens"``, ``"given"``, ``"atomic"`` or ``"delimited"``."""
    key = str(name_or_path)
    if key in RELEASES:
        return "movielens", download_movielens(key, root, base_url=base_url, download=download), key
    if key in TEXT_DATASETS:
        folder = data_root(root) / key
        missing = [f for f in ("train.txt", "test.txt") if not (folder / f).is_file()]
        if missing:
            raise DatasetNotFoundError(
                f"{key}: {', '.join(missing)} not found in {folder}. This split is not downloaded "
                f"automatically: fetch train.txt and test.txt from {TEXT_DATASETS[key]} and put "
                f"them in {folder}.")
        return "given", folder, key
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if (path / "train.txt").is_file() and (path / "test.txt").is_file():
            return "given", path, path.name
        if detect_layout(path) is not None:
            return "movielens", path, path.name
        inter = inter_files(path)
        if len(inter) == 1:
            return "atomic", inter[0], path.name
        if inter:
            raise DatasetNotFoundError(f"{path} holds several .inter files ({', '.join(p.name for p in inter)}) "
                                       f"and none named {path.name}.inter: give the file's path")
        raise DatasetNotFoundError(f"{path} holds neither train.txt + test.txt, a MovieLens "
                                   f"ratings file (ratings.csv, ratings.dat, u.data) nor a .inter file")
    if path.is_file():
        return ("atomic" if path.suffix == ".inter" else "delimited"), path, path.stem
    raise DatasetNotFoundError(f"{name_or_path!r} is neither a known dataset ({', '.join(DATASETS)}) "
                               f"nor an existing file or folder")


def _read(kind: str, path: Path, sep, header, report):
    """``(user, item, rating, timestamp, titles, notes)`` of a MovieLens, atomic or delimited source."""
    if header is not None and kind != "delimited":
        raise ValueError(f"{path}: header= applies to delimited files only (this is a {kind} dataset)")
    if kind == "movielens":
        return (*read_movielens_dir(path, bad_lines=report), {})
    if kind == "atomic":
        u, i, r, t, notes = read_atomic(path, bad_lines=report)
        return u, i, r, t, None, notes
    return (*read_delimited(path, sep, header, bad_lines=report), None, {})


def _skipped(report):
    """The report of skipped lines, logged once; None when nothing was skipped."""
    if report is None or report.count == 0:
        return None
    log.warning("%s", report)
    return report


def _build(name, user, item, rating, timestamp, titles, min_rating, notes=None,
           bad_lines=None) -> Interactions:
    if min_rating is not None:
        if rating is None:
            raise ValueError(f"{name}: min_rating={min_rating} needs ratings, but the data has none")
        keep = rating >= min_rating
        user, item = user[keep], item[keep]
        rating = rating[keep]
        timestamp = timestamp[keep] if timestamp is not None else None
        if len(user) == 0:
            raise ValueError(f"{name}: no interaction has a rating >= {min_rating}")
    u, user_ids = remap_ids(user)
    i, item_ids = remap_ids(item)
    u, i, rating, timestamp = collapse_duplicates(u, i, len(item_ids), rating, timestamp)
    item_titles = None
    if titles is not None:
        item_titles = [titles.get(k, "") for k in item_ids.tolist()]
    return Interactions(name=name, n_users=len(user_ids), n_items=len(item_ids), user=u, item=i,
                        rating=rating, timestamp=timestamp, user_ids=user_ids, item_ids=item_ids,
                        item_titles=item_titles, notes=dict(notes or {}), bad_lines=bad_lines)


def load_interactions(name_or_path, root=None, *, min_rating: Optional[float] = None,
                      download: bool = True, sep: Optional[str] = None,
                      header: Optional[bool] = None, on_bad_line: str = "error",
                      base_url: Optional[str] = None) -> Interactions:
    """The whole interaction log of a dataset (names, paths and options as for :func:`load_dataset`).

    For a text-format (given split) dataset this is the union of train.txt and test.txt, with
    the files' ids unchanged.
    """
    check_on_bad_line(on_bad_line)  # a wrong value fails before any download
    kind, path, name = _resolve(name_or_path, root, download, base_url)
    report = bad_line_report(on_bad_line, path)
    if kind != "given":
        u, i, r, t, titles, notes = _read(kind, path, sep, header, report)
        return _build(name, u, i, r, t, titles, min_rating, notes, _skipped(report))
    _check_given_options(name, min_rating, header, report)
    (tu, ti), (eu, ei), n_users, n_items, user_ids, item_ids = read_given_split(path)
    u, i, _, _ = collapse_duplicates(np.concatenate([tu, eu]), np.concatenate([ti, ei]), n_items)
    return Interactions(name=name, n_users=n_users, n_items=n_items, user=u, item=i, rating=None,
                        timestamp=None, user_ids=user_ids, item_ids=item_ids, item_titles=None)


def _check_given_options(name, min_rating, header, report) -> None:
    """Options that a train.txt/test.txt dataset cannot honour are errors, never ignored."""
    if min_rating is not None:
        raise ValueError(f"{name}: min_rating needs ratings, but the text format has none")
    if header is not None:
        raise ValueError(f"{name}: header= applies to delimited files only (this is a train.txt/test.txt dataset)")
    if report is not None:
        raise ValueError(f"{name}: on_bad_line='skip' applies to MovieLens, .inter and delimited files; "
                         f"train.txt/test.txt are read strictly (the papers' fixed split)")


def _pairs(inter: Interactions, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return inter.user[idx], inter.item[idx]


def split_interactions(inter: Interactions, split: str = "random", ratios=(0.8, 0.1, 0.1),
                       seed: int = 0) -> SplitDataset:
    """Split an :class:`Interactions` per user into a :class:`SplitDataset` (rules: module docstring)."""
    ratios = tuple(float(r) for r in ratios)
    if split == "random":
        tr, va, te = split_random(inter.user, inter.n_users, ratios, seed)
    elif split == "temporal":
        if inter.timestamp is None:
            raise ValueError(f"{inter.name}: split='temporal' needs timestamps, but the data has none")
        tr, va, te = split_temporal(inter.user, inter.timestamp, inter.n_users, ratios)
    elif split == "loo":
        tr, va, te = split_leave_one_out(inter.user, inter.n_users, timestamp=inter.timestamp,
                                         seed=seed, validation=_wants_valid(ratios))
    elif split == "given":
        raise ValueError(f"{inter.name}: split='given' needs a dataset with its own train/test files "
                         f"(train.txt, test.txt); use 'random', 'temporal' or 'loo'")
    else:
        raise ValueError(f"split must be one of {SPLITS}, but got {split!r}")
    valid = _pairs(inter, va) if _wants_valid(ratios) else None
    return SplitDataset(name=inter.name, n_users=inter.n_users, n_items=inter.n_items,
                        train=_pairs(inter, tr), valid=valid, test=_pairs(inter, te),
                        user_ids=inter.user_ids, item_ids=inter.item_ids,
                        item_titles=inter.item_titles, protocol=split, notes=dict(inter.notes),
                        bad_lines=inter.bad_lines)


def _wants_valid(ratios) -> bool:
    return len(ratios) == 3 and ratios[1] > 0


def _given_dataset(path: Path, name: str, split: str, ratios, seed: int) -> SplitDataset:
    (tu, ti), (eu, ei), n_users, n_items, user_ids, item_ids = read_given_split(path)
    tu, ti, _, _ = collapse_duplicates(tu, ti, n_items)
    eu, ei, _, _ = collapse_duplicates(eu, ei, n_items)
    valid = None
    notes = {}
    ratios = tuple(float(r) for r in ratios)
    if split == "temporal":
        raise ValueError(f"{name}: split='temporal' needs timestamps, which train.txt/test.txt do not have")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, but got {split!r}")
    if split in ("random", "loo") and _wants_valid(ratios):
        if split == "random":
            frac = ratios[1] / (ratios[0] + ratios[1])
            tr, va, _ = split_random(tu, n_users, (1.0 - frac, frac, 0.0), seed)
            notes["valid"] = f"random {frac:.4g} of each user's train.txt items (seed {seed})"
        else:
            tr, _, va = split_leave_one_out(tu, n_users, timestamp=None, seed=seed, validation=False)
            notes["valid"] = f"one random train.txt item per user with >= 2 (seed {seed})"
        valid = (tu[va], ti[va])
        tu, ti = tu[tr], ti[tr]
    return SplitDataset(name=name, n_users=n_users, n_items=n_items, train=(tu, ti), valid=valid,
                        test=(eu, ei), user_ids=user_ids, item_ids=item_ids, item_titles=None,
                        protocol="given", notes=notes)


def load_dataset(name_or_path, root=None, *, split: str = "random", ratios=(0.8, 0.1, 0.1),
                 min_rating: Optional[float] = None, seed: int = 0, download: bool = True,
                 sep: Optional[str] = None, header: Optional[bool] = None,
                 on_bad_line: str = "error", base_url: Optional[str] = None) -> SplitDataset:
    """Load a dataset and split it for training (see the module docstring for every rule).

    Args:
        name_or_path: a dataset name (``gnn.data.DATASETS``) or a file / folder.
        root: the dataset folder; default ``data_root()`` (``$GNN_DATA`` or ``~/.cache/gnn``).
        split: ``"random"``, ``"temporal"``, ``"loo"`` or ``"given"``. Text-format datasets
            (gowalla, yelp2018, amazon-book, a folder with train.txt/test.txt) use their own
            split whatever is asked; ``"random"``/``"loo"`` there only add a validation part.
        ratios: ``(train, valid, test)`` fractions per user, summing to 1.
        min_rating: keep only ratings ``>= min_rating`` as interactions (default: all).
        seed: seed of the random split.
        download: fetch a missing MovieLens release (else raise DatasetNotFoundError).
        sep: separator of a delimited file (default: detected).
        header: whether a delimited file's first line is a header (default: detected, see
            gnn.data.delimited).
        on_bad_line: ``"error"`` (default): a malformed line raises DatasetFormatError;
            ``"skip"``: such lines are skipped, counted and named in ``dataset.bad_lines``.
        base_url: where MovieLens zips are fetched (default ``$GNN_MOVIELENS_URL`` or GroupLens).

    Raises:
        DatasetFormatError: a malformed file (message names the file and line).
        DatasetNotFoundError: files absent and not downloadable; the message says what to put where.
        DownloadError: the download or its checksum failed.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, but got {split!r}")
    check_on_bad_line(on_bad_line)  # a wrong value fails before any download
    kind, path, name = _resolve(name_or_path, root, download, base_url)
    report = bad_line_report(on_bad_line, path)
    if kind == "given":
        _check_given_options(name, min_rating, header, report)
        return _given_dataset(path, name, split, ratios, seed)
    u, i, r, t, titles, notes = _read(kind, path, sep, header, report)
    inter = _build(name, u, i, r, t, titles, min_rating, notes, _skipped(report))
    return split_interactions(inter, split, ratios, seed)
