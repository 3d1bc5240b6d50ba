"""The CPU NGCF layer by row blocks (kernels/ngcf_cpu.py) against the float64 oracle:
many blocks with a ragged last one, empty rows and a long row, non-symmetric matrices through
their transpose, odd feature sizes, with and without bias, self-loop and saved S; oneDNN and
MKL products alike."""
import pytest
import torch

import gnn.kernels as K
from gnn.kernels import defaults, ngcf_cpu, ngcf_step, reference
from gnn.kernels.ngcf_layer import implementation
from kernel_graphs import random_csr


@pytest.fixture(params=["onednn", "mkl"])
def products(request, monkeypatch):
    if request.param == "onednn" and not ngcf_step._onednn_available():
        pytest.skip("this torch build has no oneDNN linear op")
    monkeypatch.setattr(defaults, "cpu_gemm", request.param)


@pytest.mark.parametrize("rows", [5, 64, defaults.CPU_BLOCK_ROWS])
@pytest.mark.parametrize("n,d_in,d_out,bias,self_loop,recompute", [
    (1, 1, 1, False, True, False),
    (37, 7, 5, True, True, False),
    (211, 16, 24, True, False, True),
    (300, 33, 17, False, False, False),
])
def test_blocks_match_dense_float64(products, monkeypatch, rows, n, d_in, d_out, bias,
                                    self_loop, recompute):
    monkeypatch.setattr(defaults, "cpu_block_rows", rows)
    rowptr, col, val = random_csr(n, n, long_row=min(3 * n, 90), seed=n + d_in)
    tr = K.csr_transpose(rowptr, col, n)  # not symmetric: the backward needs the transpose
    g = torch.Generator().manual_seed(d_out)
    ins = [torch.randn(n, d_in, generator=g), torch.randn(d_in, d_out, generator=g),
           torch.randn(d_in, d_out, generator=g)]
    ins.append(torch.randn(d_out, generator=g) if bias else None)
    ours = [t.clone().requires_grad_() if t is not None else None for t in ins]
    out = K.ngcf_layer(rowptr, col, val, *ours, 0.2, self_loop, transpose=tr, backend="torch",
                       recompute_s=recompute)
    ref_in = [t.double().requires_grad_() if t is not None else None for t in ins]
    ref = reference.ngcf_layer(rowptr, col, val, *ref_in, 0.2, self_loop)
    upstream = torch.randn(n, d_out, generator=g, dtype=torch.float64)
    got = torch.autograd.grad(out, [t for t in ours if t is not None], upstream.float())
    want = torch.autograd.grad(ref, [t for t in ref_in if t is not None], upstream)
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    for x, y in zip(got, want):
        torch.testing.assert_close(x.double(), y, rtol=1e-4, atol=1e-4)


def test_row_blocks_cover_the_csr_once():
    rowptr, col, _ = random_csr(23, 23, seed=4)
    blocks = ngcf_cpu.row_blocks(rowptr, col, 5)
    assert [(b[0], b[1]) for b in blocks] == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]
    for r0, r1, p0, p1, offsets in blocks:
        assert (p0, p1) == (int(rowptr[r0]), int(rowptr[r1]))
        assert offsets.tolist() == (rowptr[r0:r1 + 1] - p0).tolist()
        assert offsets.dtype == col.dtype
    assert ngcf_cpu.row_blocks(rowptr, col, 5) is blocks  # made once per graph


def test_only_float32_on_the_cpu_takes_the_blocks():
    cpu, f32, f64 = torch.device("cpu"), torch.float32, torch.float64
    assert implementation(cpu, "auto", f32, f32, 3, 2, 2) == "cpu_blocks"
    assert implementation(cpu, "torch", f32, f32, 3, 2, 2) == "cpu_blocks"
    assert implementation(cpu, "auto", f64, f32, 3, 2, 2) == "torch_composed"
    assert implementation(cpu, "auto", f32, f64, 3, 2, 2) == "torch_composed"
    assert implementation(cpu, "auto", torch.bfloat16, f32, 3, 2, 2) == "torch_composed"
    assert implementation(cpu, "auto", f32, f32, 0, 2, 2) == "torch_composed"
