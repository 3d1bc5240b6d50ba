"""SWAR ("SIMD within a register") digit arithmetic on uint64 lanes, for gnn.data.fastcsv.

Each field is read as right-aligned 8-byte words (one unaligned load per word and row), the
bytes in front of the field are replaced by '0', every byte is checked to be a digit with three
mask operations, and the 8 digits of a word are combined into their number in three
multiply-shift steps. Per row that is a dozen integer operations on whole arrays, instead of a
loop over every digit.
"""
from __future__ import annotations

import numpy as np

__all__ = ["unaligned_words", "field_words", "non_digits", "combine"]

_U = np.uint64
_NIBBLES = _U(0x0F0F0F0F0F0F0F0F)
_HIGH_NIBBLES = _U(0xF0F0F0F0F0F0F0F0)
_ASCII_ZEROS = _U(0x3030303030303030)
_PLUS_6 = _U(0x0606060606060606)  # a low nibble <= 9 plus 6 stays <= 15
# Indexed by the number of bytes in front of the field inside a word (0..8), first byte lowest.
_KEEP = np.array([(0xFFFFFFFFFFFFFFFF << (8 * k)) & 0xFFFFFFFFFFFFFFFF for k in range(9)], dtype=np.uint64)
_FILL = _ASCII_ZEROS & ~_KEEP
_POW8 = _U(10 ** 8)


def unaligned_words(buf: np.ndarray) -> np.ndarray:
    """``w[i]`` = the 8 bytes ``buf[i:i+8]`` as a little-endian uint64 (a strided view, no copy)."""
    return np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))


def field_words(buf: np.ndarray, e: np.ndarray, length: np.ndarray, n_words: int) -> list:
    """Per word (most significant first): the field's bytes right-aligned, '0' in front of it."""
    w = unaligned_words(buf)
    out = []
    for k in range(n_words):
        lead = np.clip(length - 8 * (n_words - 1 - k), 0, 8)  # field bytes inside this word
        front = 8 - lead
        out.append((w[e - 8 * (n_words - k)] & _KEEP[front]) | _FILL[front])
    return out


def non_digits(word: np.ndarray) -> np.ndarray:
    """Per byte, nonzero where the byte is not an ASCII digit (0x30..0x39)."""
    return ((word & _HIGH_NIBBLES) ^ _ASCII_ZEROS) | (((word & _NIBBLES) + _PLUS_6) & _HIGH_NIBBLES)


def combine(words: list) -> np.ndarray:
    """The integer spelled by ASCII-digit words (most significant word first), as int64."""
    out = None
    for word in words:
        v = word & _NIBBLES
        v = v * _U(10) + (v >> _U(8))
        v &= _U(0x00FF00FF00FF00FF)
        v = v * _U(100) + (v >> _U(16))
        v &= _U(0x0000FFFF0000FFFF)
        v = v * _U(10000) + (v >> _U(32))
        v &= _U(0xFFFFFFFF)
        if out is None:
            out = v
        else:
            out *= _POW8
            out += v
    return out.view(np.int64)
