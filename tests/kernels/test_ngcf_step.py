"""kernels/ngcf_step.py, the one definition of the NGCF layer's dense step, against float64
dense autograd of its math (docs/DESIGN.md §2) on fresh random inputs."""
import pytest
import torch

from gnn.kernels import defaults, ngcf_step


def reference(s, e, w1, w2, b, slope, self_loop):
    u1 = s + e if self_loop else s
    z = u1 @ w1 + (s * e) @ w2 + (b if b is not None else 0)
    return torch.nn.functional.leaky_relu(z, slope)


def inputs(rows, d_in, d_out, dtype, seed, bias=True):
    g = torch.Generator().manual_seed(seed)
    make = lambda *shape: torch.randn(*shape, generator=g, dtype=dtype)  # noqa: E731
    return make(rows, d_in), make(rows, d_in), make(d_in, d_out), make(d_in, d_out), (
        make(d_out) if bias else None)


@pytest.mark.parametrize("gemm", ["onednn", "mkl"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("self_loop", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("rows,d_in,d_out", [(1, 1, 1), (37, 13, 5), (130, 64, 64), (9, 20, 33)])
def test_forward_and_backward_match_dense_autograd(rows, d_in, d_out, bias, self_loop, dtype, tol,
                                                   gemm, monkeypatch):
    monkeypatch.setattr(defaults, "cpu_gemm", gemm)
    s, e, w1, w2, b = inputs(rows, d_in, d_out, dtype, seed=rows * 7 + d_in, bias=bias)
    slope = 0.2
    out = ngcf_step.forward(s, e, w1, w2, b, slope, self_loop)
    x64 = [t.detach().clone().double().requires_grad_() if t is not None else None
           for t in (s, e, w1, w2, b)]
    ref = reference(*x64, slope, self_loop)
    torch.testing.assert_close(out.double(), ref.detach(), rtol=tol, atol=tol)
    grad = torch.randn(rows, d_out, dtype=dtype, generator=torch.Generator().manual_seed(1))
    ref.backward(grad.double())
    ds, de, dw1, dw2, db = ngcf_step.backward(grad, out, s, e, w1, w2, slope, self_loop)
    for got, want in zip((ds, de, dw1, dw2), x64[:4]):
        torch.testing.assert_close(got.double(), want.grad, rtol=tol, atol=tol * rows)
    if bias:
        torch.testing.assert_close(db.double(), x64[4].grad, rtol=tol, atol=tol * rows)


def test_out_and_workspace_buffers_give_the_same_values():
    s, e, w1, w2, b = inputs(50, 16, 8, torch.float32, seed=3)
    plain = ngcf_step.forward(s, e, w1, w2, b, 0.1, True)
    out, u = torch.full((50, 8), float("nan")), torch.full((64, 32), float("nan"))
    ngcf_step.forward(s, e, w1, w2, b, 0.1, True, out=out, u=u.view(2, 64, 16)[:, :50])
    torch.testing.assert_close(out, plain, rtol=0, atol=0)
    grad = torch.randn(50, 8)
    want = ngcf_step.backward(grad, plain, s, e, w1, w2, 0.1, True)
    ds, de = torch.full((50, 16), float("nan")), torch.full((50, 16), float("nan"))
    got = ngcf_step.backward(grad, plain, s, e, w1, w2, 0.1, True, ds=ds, de_local=de, u=u[:50])
    assert got[0] is ds and got[1] is de
    for a, b_ in zip(got, want):
        torch.testing.assert_close(a, b_, rtol=0, atol=0)


@pytest.mark.parametrize("self_loop", [True, False])
def test_dense_step_gradcheck(self_loop):
    s, e, w1, w2, b = (t.requires_grad_() for t in inputs(6, 5, 3, torch.float64, seed=11))
    assert torch.autograd.gradcheck(
        lambda *xs: ngcf_step.dense_step(*xs, 0.3, self_loop), (s, e, w1, w2, b))


def test_dense_step_without_bias_has_no_bias_gradient():
    s, e, w1, w2, _ = (t.requires_grad_() if t is not None else None
                       for t in inputs(4, 3, 2, torch.float64, seed=12, bias=False))
    ngcf_step.dense_step(s, e, w1, w2, None, 0.2, True).sum().backward()
    assert all(t.grad is not None for t in (s, e, w1, w2))


def test_cpu_gemm_knob_is_read_from_the_environment():
    assert defaults.from_environ({"GNN_CPU_GEMM": "MKL"})["cpu_gemm"] == "mkl"
    assert defaults.from_environ({})["cpu_gemm"] == "onednn"
    with pytest.raises(ValueError, match="GNN_CPU_GEMM"):
        defaults.from_environ({"GNN_CPU_GEMM": "blas"})


@pytest.mark.parametrize("gemm", ["onednn", "mkl"])
def test_zero_rows(gemm, monkeypatch):
    monkeypatch.setattr(defaults, "cpu_gemm", gemm)
    s, e, w1, w2, b = (t.requires_grad_() for t in inputs(0, 5, 3, torch.float32, seed=13))
    out = ngcf_step.dense_step(s, e, w1, w2, b, 0.2, True)
    assert out.shape == (0, 3)
    out.sum().backward()
    assert (w1.grad == 0).all() and (b.grad == 0).all()
