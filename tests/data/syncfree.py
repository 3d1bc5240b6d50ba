"""Test helper: a context in which any host-device synchronisation raises.

On the CPU nothing actually waits, so the check is made on the operations themselves: every op
that copies a tensor value to the host (``.item()``, ``int()``, ``bool()``, ``if tensor:``), or
whose output shape depends on tensor values (``nonzero``, boolean-mask indexing, ``unique``,
``masked_select``, ``bincount``, ``repeat_interleave`` without ``output_size``), synchronises
on CUDA; they are caught at the dispatcher, and ``tolist()`` / ``numpy()`` (which bypass it)
are patched. A function that runs inside :func:`forbid_sync` on the CPU runs sync-free on CUDA.
"""
import contextlib

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# Ops whose result needs a value on the host (or whose output size depends on values).
_SYNCING = {"_local_scalar_dense", "item", "is_nonzero", "equal", "nonzero", "nonzero_static",
            "masked_select", "_unique", "_unique2", "unique_dim", "unique_consecutive",
            "bincount", "histc", "_assert_async"}


class SyncError(AssertionError):
    """Raised by :func:`forbid_sync` at the first synchronising operation."""


class _ForbidSync(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if name in _SYNCING:
            raise SyncError(f"{func} synchronises with the host")
        if name == "repeat_interleave" and func._overloadname != "self_int" and kwargs.get("output_size") is None:
            raise SyncError(f"{func} without output_size synchronises with the host")
        if name in ("index", "index_put", "index_put_", "_index_put_impl_"):
            indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
            if any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices):
                raise SyncError(f"{func} with a boolean mask synchronises with the host")
        return func(*args, **kwargs)


@contextlib.contextmanager
def forbid_sync():
    """Raise :class:`SyncError` on any host-device synchronisation inside the block."""
    def refuse(self, *args, **kwargs):
        raise SyncError("Tensor.tolist() / Tensor.numpy() copy to the host")

    saved = torch.Tensor.tolist, torch.Tensor.numpy
    torch.Tensor.tolist = torch.Tensor.numpy = refuse
    try:
        with _ForbidSync():
            yield
    finally:
        torch.Tensor.tolist, torch.Tensor.numpy = saved
