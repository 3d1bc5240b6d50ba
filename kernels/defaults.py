"""Defaults of the kernel knobs, read from the environment once, when gnn.kernels is imported.

Every public op takes its knobs as keyword arguments; ``None`` (the default) means the value
here. Changing the environment after the import changes nothing; a process may assign these
attributes instead (``gnn.kernels.defaults.backend = "torch"``: a torch.compile'd function
guards on them and recompiles).

* ``GNN_KERNEL_BACKEND`` -> ``backend``: ``auto`` (default) | ``triton`` | ``torch`` (backend.py).
* ``GNN_SPMM_LONG_THRESHOLD`` -> ``long_threshold``: T, an int >= 1 (default 128); on the
  Triton backend rows with more than T nonzeros are cut into segments of T (spmm_triton.py).
* ``GNN_NGCF_RECOMPUTE_S`` -> ``recompute_s``: ``1`` makes the NGCF backward recompute
  S = A e instead of saving it in the forward (ngcf_layer.py); default ``0``.
* ``GNN_CPU_BLOCK_ROWS`` -> ``cpu_block_rows``: rows per block of the CPU NGCF layer
  (ngcf_cpu.py; default 4096: a block's [U1 | U2] buffer, 2 MiB at d = 64, stays in L2).
* ``GNN_CPU_GEMM`` -> ``cpu_gemm``: ``onednn`` (default; oneDNN's float32 GEMM where this torch
  build has it, else torch.mm) | ``mkl`` (always torch.mm) for the NGCF dense step's products on
  the CPU (ngcf_step.py).
"""
from __future__ import annotations

import os
from typing import Mapping

BACKENDS = ("auto", "triton", "torch")
CPU_GEMMS = ("onednn", "mkl")
LONG_THRESHOLD = 128  # the most steps a program takes (spmm_triton.py); to be measured on the GPU
CPU_BLOCK_ROWS = 4096


def _choice(environ, name, choices, default):
    raw = environ.get(name, "").strip().lower() or default
    if raw not in choices:
        raise ValueError(f"environment variable {name} must be one of {choices}, but got "
                         f"{environ[name]!r}")
    return raw


def _positive_int(environ, name, default):
    raw = environ.get(name, "").strip() or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"environment variable {name} must be an integer >= 1, but got {raw!r}")
    return int(raw)


def from_environ(environ: Mapping[str, str]) -> dict:
    """{"backend", "long_threshold", "recompute_s", "cpu_block_rows", "cpu_gemm"} parsed from
    ``environ``; a ValueError names the variable of a bad value."""
    return dict(
        backend=_choice(environ, "GNN_KERNEL_BACKEND", BACKENDS, "auto"),
        long_threshold=_positive_int(environ, "GNN_SPMM_LONG_THRESHOLD", LONG_THRESHOLD),
        recompute_s=_choice(environ, "GNN_NGCF_RECOMPUTE_S", ("0", "1"), "0") == "1",
        cpu_block_rows=_positive_int(environ, "GNN_CPU_BLOCK_ROWS", CPU_BLOCK_ROWS),
        cpu_gemm=_choice(environ, "GNN_CPU_GEMM", CPU_GEMMS, "onednn"),
    )


_env = from_environ(os.environ)
backend: str = _env["backend"]
long_threshold: int = _env["long_threshold"]
recompute_s: bool = _env["recompute_s"]
cpu_block_rows: int = _env["cpu_block_rows"]
cpu_gemm: str = _env["cpu_gemm"]
del _env
