"""Sparse kernels for graph collaborative filtering (installed as ``gnn.kernels``).

Public API, each contract in its docstring (kernels/ops.py; docs/DESIGN.md §4):
``csr_spmm`` (y = A x), ``ngcf_layer`` (one NGCF layer, fused on Triton), ``ngcf_dense_step``
(the layer's dense part given S = A e, differentiable: kernels/ngcf_step.py), ``csr_transpose``
(the CSR of A^T) and ``get_backend`` (which implementation runs). CUDA tensors run our Triton
kernels (kernels/spmm.py, kernels/ngcf_fused.py), everything else the torch reference
(kernels/reference.py); the ops' ``backend=`` argument forces one. Knob defaults:
``gnn.kernels.defaults`` (read from the environment once, at import).
"""
from . import defaults
from .backend import get_backend
from .ngcf_step import dense_step as ngcf_dense_step
from .ops import csr_spmm, csr_transpose, ngcf_layer

__all__ = ["csr_spmm", "csr_transpose", "ngcf_layer", "ngcf_dense_step", "get_backend", "defaults"]
