"""Which implementation runs: the Triton kernels or the pure-torch reference.

``backend`` (an op's keyword argument, default ``gnn.kernels.defaults.backend``):

* ``auto``: Triton for CUDA tensors, torch for everything else.
* ``torch``: the reference everywhere (also on CUDA: a baseline and a safety net).
* ``triton``: Triton everywhere. CPU tensors can only run Triton in its interpreter, which needs
  ``TRITON_INTERPRET=1`` set *before* ``triton`` is first imported (triton decides at decoration
  time whether ``@triton.jit`` builds a compiled or an interpreted function, also for its own
  ``tl.sum``/``tl.max``); otherwise a clear error is raised.

float64 always takes the torch path, whatever the backend (csr_spmm.py, ngcf_layer.py).
"""
from __future__ import annotations

import os

import torch

from . import defaults


def triton_interpreter_active() -> bool:
    """True when triton was imported in interpreter mode (TRITON_INTERPRET=1 at import)."""
    if os.environ.get("TRITON_INTERPRET", "0") != "1":
        return False
    from triton.runtime.interpreter import InterpretedFunction

    from .spmm_triton import _spmm_row_kernel  # any of our kernels: all are decorated the same way

    return isinstance(_spmm_row_kernel, InterpretedFunction)


def check_backend(fn: str, backend) -> str:
    """``backend``, or the default for None; a ValueError for anything but auto/triton/torch."""
    backend = defaults.backend if backend is None else backend
    if backend not in defaults.BACKENDS:
        raise ValueError(f"{fn}(): argument 'backend' must be one of {defaults.BACKENDS}, "
                         f"but got {backend!r}")
    return backend


def get_backend(device: torch.device | str | None = None, backend: str | None = None) -> str:
    """``"triton"`` or ``"torch"``: what runs for tensors on ``device`` (None: CUDA if available)
    when ``backend`` (None: ``defaults.backend``) is asked for."""
    choice = check_backend("get_backend", backend)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if choice == "torch":
        return "torch"
    if device.type == "cuda":
        return "triton"
    if choice == "auto":
        return "torch"
    # triton asked for on a non-CUDA device: only the interpreter can run it
    if device.type == "cpu" and triton_interpreter_active():
        return "triton"
    raise ValueError(
        "backend 'triton' on a CPU tensor needs the Triton interpreter: set TRITON_INTERPRET=1 "
        "before triton is imported (e.g. in the shell), but got "
        f"TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET')!r} and device {device}"
    )
