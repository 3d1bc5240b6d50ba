"""The kernels' knobs: the backend choice, argument checks, defaults read from the environment
once (docs/KERNELS.md, "Knobs")."""
import os

import pytest
import torch

import gnn.kernels as K
from gnn.kernels import defaults
from kernel_graphs import sym_norm_csr
from test_kernels_reference import _good


def test_backend_choice():
    assert K.get_backend("cpu", "auto") == "torch"
    assert K.get_backend("cuda", "auto") == "triton"
    assert K.get_backend("cuda", "torch") == "torch"
    with pytest.raises(ValueError, match=r"^get_backend\(\): argument 'backend'"):
        K.get_backend("cpu", "bogus")
    if os.environ.get("TRITON_INTERPRET") != "1":
        with pytest.raises(ValueError, match="TRITON_INTERPRET"):
            K.get_backend("cpu", "triton")
        with pytest.raises(ValueError, match="TRITON_INTERPRET"):  # the argument reaches the op
            K.csr_spmm(*_good(), backend="triton")


def test_knob_arguments_are_checked():
    rowptr, col, val, x = _good()
    with pytest.raises(ValueError, match=r"^csr_spmm\(\): argument 'backend'.*but got 'cuda'"):
        K.csr_spmm(rowptr, col, val, x, backend="cuda")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match=r"^csr_spmm\(\): argument 'long_threshold'"):
            K.csr_spmm(rowptr, col, val, x, long_threshold=bad)
    rowptr, col, val = sym_norm_csr(10, seed=0)
    e, w = torch.randn(10, 4), torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"^ngcf_layer\(\): argument 'backend'"):
        K.ngcf_layer(rowptr, col, val, e, w, w, backend="Torch")
    with pytest.raises(ValueError, match=r"^ngcf_layer\(\): argument 'long_threshold'"):
        K.ngcf_layer(rowptr, col, val, e, w, w, long_threshold=0)


def test_knob_defaults_come_from_the_environment_once(monkeypatch):
    assert defaults.from_environ({}) == dict(backend="auto", long_threshold=128,
                                             recompute_s=False, cpu_block_rows=4096,
                                             cpu_gemm="onednn")
    assert defaults.from_environ({"GNN_KERNEL_BACKEND": " Torch", "GNN_SPMM_LONG_THRESHOLD": "64",
                                  "GNN_NGCF_RECOMPUTE_S": "1", "GNN_CPU_BLOCK_ROWS": "100",
                                  "GNN_CPU_GEMM": "mkl"}) == dict(
        backend="torch", long_threshold=64, recompute_s=True, cpu_block_rows=100, cpu_gemm="mkl")
    for name, bad in (("GNN_KERNEL_BACKEND", "cuda"), ("GNN_SPMM_LONG_THRESHOLD", "0"),
                      ("GNN_SPMM_LONG_THRESHOLD", "1e3"), ("GNN_NGCF_RECOMPUTE_S", "yes"),
                      ("GNN_CPU_BLOCK_ROWS", "0"), ("GNN_CPU_GEMM", "blas")):
        with pytest.raises(ValueError, match=rf"^environment variable {name} .*but got"):
            defaults.from_environ({name: bad})
    # read at import only: a bad value set now is never seen by a call
    monkeypatch.setenv("GNN_KERNEL_BACKEND", "bogus")
    monkeypatch.setenv("GNN_SPMM_LONG_THRESHOLD", "-1")
    rowptr, col, val, x = _good()
    K.csr_spmm(rowptr, col, val, x, backend="torch")  # long_threshold: the import-time default
    K.get_backend("cpu")  # backend: the import-time default
