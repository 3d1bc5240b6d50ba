"""csr_sddmm and csr_spmm's gradient in val (learnable edge weights, issue 17) against the
float64 oracle (kernels/reference.py, itself checked against dense algebra here): the torch
path, the Triton kernel (in the interpreter without a GPU), gradcheck, opcheck, torch.compile."""
import importlib

import pytest
import torch

import gnn.kernels as K
from gnn.kernels import reference
from interpreter import DEV, here, launcher, run_in_interpreter
from kernel_graphs import close, dense_of, random_csr, sym_norm_csr

SHAPES = [(1, 1, 1), (7, 5, 3), (33, 20, 17), (50, 64, 64), (13, 40, 100), (9, 11, 130)]
LOW = {torch.float32: 2e-5, torch.bfloat16: 3e-2, torch.float16: 4e-3}


def graph(n_rows, n_cols, d, device="cpu", **kw):
    return random_csr(n_rows, n_cols, long_row=min(4 * max(n_cols, 1), 60), seed=d,
                      device=device, **kw)


def test_the_sddmm_oracle_matches_dense_algebra():
    rowptr, col, _ = graph(11, 9, 4)
    a, b = torch.randn(11, 4, dtype=torch.float64), torch.randn(9, 4, dtype=torch.float64)
    rows = reference.rows_of_entries(rowptr)
    torch.testing.assert_close(reference.sddmm(rowptr, col, a, b), (a @ b.T)[rows, col.long()])


@pytest.mark.parametrize("backend", ["torch", pytest.param("triton", marks=here)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("n_rows,n_cols,d", SHAPES)
def test_sddmm_matches_the_oracle(n_rows, n_cols, d, dtype, backend):
    idx = [(torch.int64, torch.int32), (torch.int32, torch.int64)][d % 2]
    dev = DEV if backend == "triton" else "cpu"
    rowptr, col, _ = graph(n_rows, n_cols, d, device=dev, index_dtype=idx[0], col_dtype=idx[1])
    a = torch.randn(n_rows, d, device=dev).to(dtype)
    b = torch.randn(n_cols, d, device=dev).to(dtype)
    out = K.csr_sddmm(rowptr, col, a, b, backend=backend)
    assert out.dtype == torch.float32 and out.shape == col.shape
    close(out, reference.sddmm(rowptr.cpu(), col.cpu(), a.cpu(), b.cpu()), LOW[dtype] * d ** 0.5,
          "sddmm")


@pytest.mark.parametrize("backend", ["torch", pytest.param("triton", marks=here)])
def test_sddmm_empty_structures(backend):
    dev = DEV if backend == "triton" else "cpu"
    a, b = torch.randn(4, 3, device=dev), torch.randn(5, 3, device=dev)
    empty = torch.zeros(5, dtype=torch.int64, device=dev), torch.zeros(0, dtype=torch.int32, device=dev)
    assert K.csr_sddmm(*empty, a, b, backend=backend).shape == (0,)
    rowptr, col, _ = graph(4, 5, 2, device=dev)
    zero_width = K.csr_sddmm(rowptr, col, a[:, :0], b[:, :0], backend=backend)
    assert zero_width.shape == col.shape and (zero_width == 0).all()


def test_torch_path_is_the_same_in_any_chunking(monkeypatch):
    sddmm_module = importlib.import_module("gnn.kernels.csr_sddmm")
    rowptr, col, _ = graph(40, 30, 9)
    a, b = torch.randn(40, 9), torch.randn(30, 9)
    whole = K.csr_sddmm(rowptr, col, a, b, backend="torch")
    monkeypatch.setattr(sddmm_module, "CHUNK_ENTRIES", 7)
    torch.testing.assert_close(K.csr_sddmm(rowptr, col, a, b, backend="torch"), whole,
                               rtol=0, atol=0)


@pytest.mark.parametrize("backend", ["torch", pytest.param("triton", marks=here)])
@pytest.mark.parametrize("mode", ["build", "transpose", "symmetric"])
@pytest.mark.parametrize("n,d", [(1, 1), (23, 7), (41, 64), (30, 33)])
def test_spmm_gradient_in_val_matches_the_oracle(n, d, mode, backend):
    """Learnable edge weights: dval (an SDDMM) and dx of y = A x, against float64 autograd."""
    dev = DEV if backend == "triton" else "cpu"
    if mode == "symmetric":
        rowptr, col, val = sym_norm_csr(n, seed=d, device=dev)
    else:
        rowptr, col, val = graph(n, n, d, device=dev)
    tr = K.csr_transpose(rowptr, col, n) if mode == "transpose" else None
    x = torch.randn(n, d, device=dev)
    up = torch.randn(n, d, device=dev)
    v, xx = val.clone().requires_grad_(), x.clone().requires_grad_()
    y = K.csr_spmm(rowptr, col, v, xx, symmetric=mode == "symmetric", transpose=tr,
                   backend=backend)
    y.backward(up)
    cpu = [t.cpu() for t in (rowptr, col)]
    v64, x64 = val.cpu().double().requires_grad_(), x.cpu().double().requires_grad_()
    reference.spmm(*cpu, v64, x64).backward(up.cpu().double())
    close(y, reference.spmm(*cpu, val.cpu(), x.cpu()), 2e-5, "y")
    assert v.grad.dtype == val.dtype and v.grad.shape == val.shape
    close(v.grad, v64.grad, 2e-5 * d ** 0.5, "dval")
    close(xx.grad, x64.grad, 2e-5, "dx")


def test_spmm_keeps_x_for_the_backward_only_when_val_is_learned():
    rowptr, col, val = graph(9, 9, 3)
    x = torch.randn(9, 3, requires_grad=True)
    y = K.csr_spmm(rowptr, col, val, x)  # val fixed: no dval, x not needed
    y.sum().backward()
    assert val.grad is None and x.grad is not None
    v = val.clone().requires_grad_()
    K.csr_spmm(rowptr, col, v, x.detach()).sum().backward()  # only val learned
    assert v.grad is not None


def test_gradcheck_float64():
    rowptr, col, val = graph(8, 6, 2)
    v = val.double().requires_grad_()
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, x: K.csr_spmm(rowptr, col, v, x), (v, x))
    assert torch.autograd.gradgradcheck(lambda v, x: K.csr_spmm(rowptr, col, v, x), (v, x))
    a = torch.randn(8, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: K.csr_sddmm(rowptr, col, a, b), (a, b))


def test_sddmm_gradients_are_two_spmms():
    rowptr, col, _ = graph(12, 10, 5)
    a = torch.randn(12, 5, requires_grad=True)
    b = torch.randn(10, 5, requires_grad=True)
    g = torch.randn(col.shape[0])
    K.csr_sddmm(rowptr, col, a, b).backward(g)
    dense_g = dense_of(rowptr, col, g, 10)
    torch.testing.assert_close(a.grad.double(), dense_g @ b.detach().double(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b.grad.double(), dense_g.T @ a.detach().double(), rtol=1e-5,
                               atol=1e-5)


def test_sddmm_bad_input_names_the_argument():
    rowptr, col, _ = graph(5, 4, 3)
    a, b = torch.randn(5, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"^csr_sddmm\(\): argument 'b' must have as many columns"):
        K.csr_sddmm(rowptr, col, a, torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"^csr_sddmm\(\): argument 'rowptr' must have n_rows \+ 1"):
        K.csr_sddmm(rowptr, col, torch.randn(6, 3), b)
    with pytest.raises(ValueError, match=r"^csr_sddmm\(\): argument 'col' must hold column"):
        K.csr_sddmm(rowptr, col, a, b[:2])
    with pytest.raises(ValueError, match=r"^csr_sddmm\(\): argument 'a' must be contiguous"):
        K.csr_sddmm(rowptr, col, torch.randn(3, 5).T, b)


def test_opcheck_and_compile():
    rowptr, col, val = graph(9, 7, 4)
    a, b = torch.randn(9, 5, requires_grad=True), torch.randn(7, 5, requires_grad=True)
    op = importlib.import_module("gnn.kernels.csr_sddmm")._csr_sddmm_op
    torch.library.opcheck(op, (rowptr, col, a, b, "torch"))
    spmm_op = importlib.import_module("gnn.kernels.csr_spmm")._csr_spmm_op
    v = val.clone().requires_grad_()
    torch.library.opcheck(spmm_op, (rowptr, col, v, b, False, None, None, None, "torch", 16))
    torch._dynamo.reset()
    f = torch.compile(lambda v, x: K.csr_spmm(rowptr, col, v, x).square().sum(), fullgraph=True,
                      backend="aot_eager")
    f(v, b).backward()
    eager = val.clone().requires_grad_()
    K.csr_spmm(rowptr, col, eager, b.detach()).square().sum().backward()
    torch.testing.assert_close(v.grad, eager.grad)


@launcher
def test_sddmm_suite_in_interpreter():
    run_in_interpreter(__file__, min_passed=60)
