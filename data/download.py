"""Fetching MovieLens archives: atomic download, checksum, safe extraction.

Only the standard library is used (urllib, hashlib, zipfile). The base URL is GroupLens'
unless ``base_url`` or ``$GNN_MOVIELENS_URL`` names a mirror (the tests serve generated zips
from 127.0.0.1). Nothing is trusted before it is verified: the archive is written to a
temporary file beside its final name and renamed only after its digest matched; it is
extracted into a temporary folder and moved into place only after every member passed the
path checks and its CRC.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import stat
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Optional

from .errors import ChecksumError, DatasetFormatError, DatasetNotFoundError, DownloadError
from .movielens import RELEASES, Release, find_release_dir
from .paths import data_root

__all__ = ["DEFAULT_BASE_URL", "BASE_URL_ENV", "movielens_url", "fetch", "fetch_md5",
           "safe_extract", "download_movielens", "file_digest"]

DEFAULT_BASE_URL = "https://files.grouplens.org/datasets/movielens"
BASE_URL_ENV = "GNN_MOVIELENS_URL"
_CHUNK = 1 << 20
_TIMEOUT = 60


def movielens_url(release: Release, base_url: Optional[str] = None) -> str:
    base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return f"{base.rstrip('/')}/{release.zip_name}"


def file_digest(path, algorithm: str) -> str:
    h = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _manual_hint(url: str, dest: Path) -> str:
    return f"Fetch {url} by hand and save it as {dest}, then call again."


def fetch(url: str, dest, *, md5: Optional[str] = None, sha256: Optional[str] = None,
          timeout: float = _TIMEOUT) -> Path:
    """Download ``url`` to ``dest`` atomically; verify ``md5`` / ``sha256`` when given.

    Raises:
        DownloadError: the server could not be reached, answered an error, or sent fewer bytes
            than it announced; the message says which URL to fetch and where to put it.
        ChecksumError: the bytes arrived but their digest is not the expected one.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    try:
        h_md5 = hashlib.md5(usedforsecurity=False)
        h_sha = hashlib.sha256()
        n = 0
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    announced = resp.headers.get("Content-Length")
                    while chunk := resp.read(_CHUNK):
                        out.write(chunk)
                        h_md5.update(chunk)
                        h_sha.update(chunk)
                        n += len(chunk)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise DownloadError(f"could not download {url}: {reason}. {_manual_hint(url, dest)}") from exc
        if announced is not None and n != int(announced):
            raise DownloadError(f"download of {url} was cut short: {n} of {announced} bytes. "
                                f"{_manual_hint(url, dest)}")
        for name, want, got in (("MD5", md5, h_md5.hexdigest()), ("SHA-256", sha256, h_sha.hexdigest())):
            if want is not None and got != want.lower():
                raise ChecksumError(f"{url}: {name} {got} differs from the expected {want.lower()} "
                                    f"(a truncated, corrupted or changed file). {_manual_hint(url, dest)}")
        os.replace(tmp, dest)
        return dest
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def fetch_md5(url: str, timeout: float = _TIMEOUT) -> str:
    """The MD5 published at ``url`` (GroupLens' ``<zip>.md5``: ``MD5 (x.zip) = hex`` or ``hex  x.zip``)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            text = resp.read(4096).decode("ascii", "replace")
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"could not fetch the checksum {url}: {reason}; refusing to use an "
                            f"unverified archive") from exc
    m = re.search(r"\b[0-9a-fA-F]{32}\b", text)
    if not m:
        raise DownloadError(f"{url} does not hold an MD5 digest: {text[:100]!r}")
    return m.group(0).lower()


def _check_member(info: zipfile.ZipInfo, archive: Path) -> PurePosixPath:
    name = info.filename.replace("\\", "/")
    p = PurePosixPath(name)
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in p.parts:
        raise DatasetFormatError(archive, f"refusing unsafe member path {info.filename!r}")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise DatasetFormatError(archive, f"refusing symbolic link member {info.filename!r}")
    return p


def safe_extract(archive, dest_root, folder: str) -> Path:
    """Extract ``archive`` and move its top folder ``folder`` to ``dest_root/folder``.

    Absolute paths, ``..`` components and symlinks are refused before anything is written;
    a bad CRC or a truncated member raises :class:`DatasetFormatError` naming the archive.
    """
    archive, dest_root = Path(archive), Path(dest_root)
    final = dest_root / folder
    if final.exists():
        raise DatasetFormatError(final, "exists but does not hold the expected files; remove it and retry")
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder}.", dir=dest_root))
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                members = [(info, _check_member(info, archive)) for info in zf.infolist()]
                for info, rel in members:
                    target = tmp.joinpath(*rel.parts)
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out, _CHUNK)  # the CRC is checked at the end
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            raise DatasetFormatError(archive, f"not a valid zip archive (truncated or corrupted?): {exc}") from exc
        if not (tmp / folder).is_dir():
            raise DatasetFormatError(archive, f"the archive has no top-level folder {folder!r}")
        os.replace(tmp / folder, final)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _missing_message(release: Release, root: Path, url: str) -> str:
    return (f"MovieLens {release.name} is not in {root}. Download {url}, and either save it as "
            f"{root / release.zip_name} or extract it so that "
            f"{root / release.folder / release.ratings} exists.")


def download_movielens(name: str, root=None, *, base_url: Optional[str] = None,
                       download: bool = True) -> Path:
    """The folder of MovieLens release ``name`` under ``data_root(root)``, fetched if needed.

    A folder already holding the ratings file is used as is (no network). Otherwise a zip
    already saved as ``root/<name>.zip`` is verified and extracted; otherwise, if ``download``,
    the zip is fetched from ``base_url`` (default GroupLens), verified against the pinned MD5
    (or, for ml-latest and ml-latest-small, the ``.md5`` the same server publishes beside it),
    then extracted. Extracted files with pinned SHA-256 are checked too.
    """
    if name not in RELEASES:
        raise KeyError(f"unknown MovieLens release {name!r}; known: {sorted(RELEASES)}")
    release = RELEASES[name]
    root = data_root(root)
    found = find_release_dir(root, release)
    if found is not None:
        return found
    url = movielens_url(release, base_url)
    zip_path = root / release.zip_name
    if zip_path.is_file():
        # A zip the user saved is used like a folder they extracted: checked against the pinned
        # MD5 where there is one (no network), and by the CRCs while extracting.
        if release.md5 is not None:
            got = file_digest(zip_path, "md5")
            if got != release.md5:
                raise ChecksumError(f"{zip_path}: MD5 {got} differs from the expected {release.md5}; "
                                    f"delete it or replace it with a good copy of {url}")
    else:
        if not download:
            raise DatasetNotFoundError(_missing_message(release, root, url) + " (download=False)")
        root.mkdir(parents=True, exist_ok=True)
        fetch(url, zip_path, md5=release.md5 or fetch_md5(url + ".md5"))
    folder = safe_extract(zip_path, root, release.folder)
    for fname, sha in release.file_sha256:
        got = file_digest(folder / fname, "sha256")
        if got != sha:
            shutil.rmtree(folder, ignore_errors=True)
            raise ChecksumError(f"{folder / fname}: SHA-256 {got} differs from the pinned {sha} "
                                f"(not the {release.name} release this library knows)")
    if not (folder / release.ratings).is_file():
        raise DatasetFormatError(zip_path, f"the archive has no {release.folder}/{release.ratings}")
    return folder
