"""An opt-in, process-wide allocator setting for CPU training (``TrainConfig.keep_freed_memory``,
``python -m gnn.train --keep-freed-memory``).

A CPU training step frees and allocates the same large N x d tensors every time. By default
glibc serves big blocks with ``mmap`` and unmaps them when freed (and trims a heap whose free
top grows past a threshold), so every step page-faults its tensors in again, zero-filled by the
kernel; on large graphs that is a large share of a step's CPU time. Raising glibc's mmap and
trim thresholds keeps freed blocks in the process for reuse: peak memory is unchanged, but the
resident size stays at the peak between steps, and the setting holds for the whole process
(other libraries included) until it exits. So it is never made unless asked for.
"""
from __future__ import annotations

import ctypes

_MALLOPT = {"M_TRIM_THRESHOLD": -1, "M_MMAP_THRESHOLD": -3}  # glibc's <malloc.h>


def keep_freed_memory(limit: int = 1 << 30) -> bool:
    """Let glibc keep freed blocks (up to ``limit`` bytes each) for reuse instead of returning
    them to the kernel (``mallopt`` of ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD``); True
    when it took the setting, False where there is no glibc. Process-wide and not undone."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return all(libc.mallopt(code, limit) == 1 for code in _MALLOPT.values())
    except (OSError, AttributeError):
        return False
