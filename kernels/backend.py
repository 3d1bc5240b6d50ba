"""Which implementation runs: the Triton kernels or the pure-torch reference.

``GNN_KERNEL_BACKEND`` = ``auto`` (default) | ``triton`` | ``torch``, read at every call (so a
test or a user can switch it at run time):

* ``auto``: Triton for CUDA tensors, torch for everything else.
* ``torch``: the reference everywhere (also on CUDA: a baseline and a safety net).
* ``triton``: Triton everywhere. CPU tensors can only run Triton in its interpreter, which needs
  ``TRITON_INTERPRET=1`` set *before* ``triton`` is first imported (triton decides at decoration
  time whether ``@triton.jit`` builds a compiled or an interpreted function, also for its own
  ``tl.sum``/``tl.max``); otherwise a clear error is raised.
"""
from __future__ import annotations

import os

import torch

_CHOICES = ("auto", "triton", "torch")


def _requested() -> str:
    choice = os.environ.get("GNN_KERNEL_BACKEND", "auto").strip().lower() or "auto"
    if choice not in _CHOICES:
        raise ValueError(f"GNN_KERNEL_BACKEND must be one of {_CHOICES}, but got {choice!r}")
    return choice


def triton_interpreter_active() -> bool:
    """True when triton was imported in interpreter mode (TRITON_INTERPRET=1 at import)."""
    if os.environ.get("TRITON_INTERPRET", "0") != "1":
        return False
    from triton.runtime.interpreter import InterpretedFunction

    from .spmm import _spmm_row_kernel  # any of our kernels: all are decorated the same way

    return isinstance(_spmm_row_kernel, InterpretedFunction)


def get_backend(device: torch.device | str | None = None) -> str:
    """``"triton"`` or ``"torch"`` for tensors on ``device`` (None: CUDA if available)."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    choice = _requested()
    if choice == "torch":
        return "torch"
    if device.type == "cuda":
        return "triton"
    if choice == "auto":
        return "torch"
    # forced triton on a non-CUDA device: only the interpreter can run it
    if device.type == "cpu" and triton_interpreter_active():
        return "triton"
    raise ValueError(
        "GNN_KERNEL_BACKEND=triton on a CPU tensor needs the Triton interpreter: set "
        "TRITON_INTERPRET=1 before triton is imported (e.g. in the shell), "
        f"but got TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET')!r} and device {device}"
    )
