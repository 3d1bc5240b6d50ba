"""Defaults of the kernel knobs, read from the environment once, when gnn.kernels is imported.

Every public op takes its knobs as keyword arguments; ``None`` (the default) means the value
here. Changing the environment after the import changes nothing; a process may assign these
attributes instead (``gnn.kernels.defaults.backend = "torch"``: a torch.compile'd function
guards on them and recompiles).

* ``GNN_KERNEL_BACKEND`` -> ``backend``: ``auto`` (default) | ``triton`` | ``torch`` (backend.py).
* ``GNN_SPMM_LONG_THRESHOLD`` -> ``long_threshold``: T, an int >= 1 (default 1024); on the
  Triton backend rows with more than T nonzeros are cut into segments of T (spmm.py).
* ``GNN_NGCF_RECOMPUTE_S`` -> ``recompute_s``: ``1`` makes the NGCF backward recompute
  S = A e instead of saving it in the forward (ngcf_fused.py); default ``0``.
* ``GNN_CPU_GEMM`` -> ``cpu_gemm``: ``onednn`` (default; oneDNN's float32 GEMM where this torch
  build has it, else torch.mm) | ``mkl`` (always torch.mm) for the NGCF dense step's products on
  the CPU (ngcf_step.py).
"""
from __future__ import annotations

import os
from typing import Mapping

BACKENDS = ("auto", "triton", "torch")
CPU_GEMMS = ("onednn", "mkl")
LONG_THRESHOLD = 1024  # reasoned, to be measured on the GPU (spmm.py)


def from_environ(environ: Mapping[str, str]) -> dict:
    """{"backend", "long_threshold", "recompute_s", "cpu_gemm"} parsed from ``environ``; a
    ValueError names the variable of a bad value."""
    backend = environ.get("GNN_KERNEL_BACKEND", "").strip().lower() or "auto"
    if backend not in BACKENDS:
        raise ValueError(f"environment variable GNN_KERNEL_BACKEND must be one of {BACKENDS}, "
                         f"but got {environ['GNN_KERNEL_BACKEND']!r}")
    raw = environ.get("GNN_SPMM_LONG_THRESHOLD", "").strip() or str(LONG_THRESHOLD)
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError("environment variable GNN_SPMM_LONG_THRESHOLD must be an integer >= 1, "
                         f"but got {raw!r}")
    recompute = environ.get("GNN_NGCF_RECOMPUTE_S", "").strip() or "0"
    if recompute not in ("0", "1"):
        raise ValueError(f"environment variable GNN_NGCF_RECOMPUTE_S must be 0 or 1, but got "
                         f"{recompute!r}")
    cpu_gemm = environ.get("GNN_CPU_GEMM", "").strip().lower() or "onednn"
    if cpu_gemm not in CPU_GEMMS:
        raise ValueError(f"environment variable GNN_CPU_GEMM must be one of {CPU_GEMMS}, but got "
                         f"{environ['GNN_CPU_GEMM']!r}")
    return dict(backend=backend, long_threshold=int(raw), recompute_s=recompute == "1",
                cpu_gemm=cpu_gemm)


_env = from_environ(os.environ)
backend: str = _env["backend"]
long_threshold: int = _env["long_threshold"]
recompute_s: bool = _env["recompute_s"]
cpu_gemm: str = _env["cpu_gemm"]
del _env
