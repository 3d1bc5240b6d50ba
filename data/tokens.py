"""Id columns of text ("tokens": ``user_0000``, ASINs, ``-3``, ``007``), parsed with arrays only.

A block's fields are gathered as 8-byte words (one unaligned load per word and row, the bytes
after the field masked to zero) into a fixed-width ``S`` array, so that ``np.unique`` sorts and
numbers them without a Python object per row. Each block yields ``(codes, vocabulary)``; the
blocks' vocabularies are merged into one, sorted by bytes, which for UTF-8 is the order of
Python's ``sorted`` on the decoded strings. Fields longer than ``_MAX_WORDS`` words (rare) go
through Python ``bytes`` instead.
"""
from __future__ import annotations

import numpy as np

from .errors import DatasetFormatError
from .swar import unaligned_words

__all__ = ["TokenIds", "parse_tokens", "merge_tokens"]

_MAX_WORDS = 8  # fields up to 64 bytes are gathered as words
# _LOW[v]: the low v bytes of a little-endian word (the field's first v bytes)
_LOW = np.array([(1 << (8 * v)) - 1 for v in range(8)] + [0xFFFFFFFFFFFFFFFF], dtype=np.uint64)


class TokenIds:
    """A column of text ids: row ``r`` holds ``vocab[codes[r]]``; ``vocab`` is sorted and unique
    (numpy ``str``). Rows can be selected like an array (``ids[mask]``)."""

    __slots__ = ("codes", "vocab")

    def __init__(self, codes: np.ndarray, vocab: np.ndarray):
        self.codes, self.vocab = codes, vocab

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, rows) -> "TokenIds":
        return TokenIds(self.codes[rows], self.vocab)

    def strings(self) -> np.ndarray:
        """Each row's id as a string (one element per row: for tests and small files)."""
        return self.vocab[self.codes]

    def __repr__(self) -> str:
        return f"TokenIds(rows={len(self.codes)}, distinct={len(self.vocab)})"


def _gather(buf: np.ndarray, s: np.ndarray, length: np.ndarray, n_words: int) -> np.ndarray:
    """Fields ``buf[s:s+length]`` as ``S{8 n_words}`` values (zero bytes after each field)."""
    w = unaligned_words(buf)
    out = np.empty((len(s), n_words), dtype="<u8")
    for j in range(n_words):
        out[:, j] = w[s + 8 * j] & _LOW[np.clip(length - 8 * j, 0, 8)]
    return out.view(f"S{8 * n_words}").reshape(-1)


def parse_tokens(blk, s: np.ndarray, e: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, vocabulary)`` of one block's column: ``vocabulary[codes]`` are the fields' bytes.

    ``blk`` is a gnn.data.fastcsv block (``buf`` behind its pad, ``fail(row, message)``).
    """
    n = len(s)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype="S8")
    length = e - s
    if int(length.min()) <= 0:
        blk.fail(int(np.flatnonzero(length <= 0)[0]), f"column {name!r} is empty")
    long = length > 8 * _MAX_WORDS
    n_words = -(-int(length[~long].max(initial=1)) // 8)
    # words may be read up to 8 * _MAX_WORDS bytes past a field's start: pad the buffer's end
    buf = np.concatenate([blk.buf, np.zeros(8 * _MAX_WORDS + 8, dtype=np.uint8)])
    bom = (buf[s] == 0xEF) & (buf[s + 1] == 0xBB) & (buf[s + 2] == 0xBF)
    if bom.any():  # U+FEFF starting an id: most likely two files joined, not an id
        blk.fail(int(np.flatnonzero(bom)[0]), f"column {name!r}: a byte-order mark inside the file "
                                              f"(were two files joined?)")
    if not long.any():
        vocab, codes = np.unique(_gather(buf, s, length, n_words), return_inverse=True)
        return codes.reshape(-1).astype(np.int64, copy=False), vocab
    keys = np.empty(n, dtype=object)
    short = np.flatnonzero(~long)
    keys[short] = _gather(buf, s[short], length[short], n_words).tolist()
    keys[long] = [bytes(buf[a:b]) for a, b in zip(s[long].tolist(), e[long].tolist())]
    vocab, codes = np.unique(keys, return_inverse=True)
    return codes.reshape(-1).astype(np.int64, copy=False), vocab


def merge_tokens(parts: list, path, name: str) -> TokenIds:
    """One :class:`TokenIds` of the blocks' ``(codes, vocabulary)`` in file order."""
    if not parts:
        return TokenIds(np.zeros(0, dtype=np.int64), np.zeros(0, dtype="<U1"))
    vocabs = [v for _, v in parts]
    if any(v.dtype == object for v in vocabs):
        vocabs = [v.astype(object) for v in vocabs]
    vocab, index = np.unique(np.concatenate(vocabs), return_inverse=True)
    index = index.reshape(-1)
    offsets = np.cumsum([0] + [len(v) for v in vocabs])
    codes = np.concatenate([index[off + c] for off, (c, _) in zip(offsets, parts)])
    return TokenIds(codes, _decode(vocab, path, name))


def _decode(vocab: np.ndarray, path, name: str) -> np.ndarray:
    """The sorted byte strings as a numpy ``str`` array (UTF-8); the order is kept."""
    try:
        if vocab.dtype == object:
            return np.array([b.decode("utf-8") for b in vocab.tolist()], dtype=str)
        return np.char.decode(vocab, "utf-8")
    except UnicodeDecodeError:
        for raw in vocab.tolist():
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DatasetFormatError(path, f"column {name!r}: the id {raw!r} is not valid "
                                               f"UTF-8 text; save the file as UTF-8") from None
        raise
