"""Sparse kernels for graph collaborative filtering (installed as ``gnn.kernels``).

One op per file, each holding its contract (the public function's docstring), its
torch.library registration, its dispatch (``implementation()``: which code runs for which
device, dtype and size) and its host code; the implementations sit beside it under names that
say what they are (docs/KERNELS.md):

* ``csr_spmm`` (y = A x): kernels/csr_spmm.py; Triton kernels spmm_triton.py.
* ``ngcf_layer`` (one NGCF layer): kernels/ngcf_layer.py; fused Triton kernels ngcf_triton.py,
  the CPU layer by row blocks ngcf_cpu.py, and the layer's dense step ngcf_step.py (also public
  as ``ngcf_dense_step``, differentiable, for callers that run their own SpMM).
* ``csr_sddmm`` (⟨a[row], b[col]⟩ on every entry of a CSR; csr_spmm's gradient in val):
  kernels/csr_sddmm.py; Triton kernel sddmm_triton.py.
* ``csr_transpose`` (the CSR of Aᵀ): kernels/csr_transpose.py.

``get_backend`` says which backend runs; knob defaults are ``gnn.kernels.defaults`` (read from
the environment once, at import). kernels/reference.py is the tests' float64 oracle.
"""
from . import defaults
from .backend import get_backend
from .csr_sddmm import csr_sddmm
from .csr_spmm import csr_spmm
from .csr_transpose import csr_transpose
from .ngcf_layer import ngcf_layer
from .ngcf_step import dense_step as ngcf_dense_step

__all__ = ["csr_spmm", "csr_sddmm", "csr_transpose", "ngcf_layer", "ngcf_dense_step", "get_backend", "defaults"]
