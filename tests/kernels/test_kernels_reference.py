"""The public API on the torch backend: values and gradients vs a dense float64 oracle,
csr_transpose, input checks, the knobs, torch.library registration (opcheck, torch.compile)."""
import functools
import os

import pytest
import torch
import torch.nn.functional as F

import gnn.kernels as K
from gnn.kernels import defaults, reference
from kernel_graphs import dense_of, random_csr, sym_norm_csr

# every call of this module runs the torch backend, whatever the environment says
csr_spmm = functools.partial(K.csr_spmm, backend="torch")
ngcf_layer = functools.partial(K.ngcf_layer, backend="torch")


def test_the_oracle_itself_matches_dense_algebra():
    """kernels/reference.py, what the kernel tests compare against, against dense matrices
    built entry by entry (tiny graphs: duplicates, empty rows, a long row)."""
    rowptr, col, val = random_csr(11, 9, long_row=20, seed=8)
    a = dense_of(rowptr, col, val, 9)
    x = torch.randn(9, 4, dtype=torch.float64)
    torch.testing.assert_close(reference.spmm(rowptr, col, val, x), a @ x)
    rowptr, col, val = random_csr(9, 9, long_row=20, seed=9)
    a = dense_of(rowptr, col, val, 9)
    e, w1, w2, b = (torch.randn(*s, dtype=torch.float64) for s in ((9, 5), (5, 3), (5, 3), (3,)))
    for self_loop in (True, False):
        s = a @ e
        want = F.leaky_relu((s + e if self_loop else s) @ w1 + (s * e) @ w2 + b, 0.2)
        torch.testing.assert_close(reference.ngcf_layer(rowptr, col, val, e, w1, w2, b, 0.2,
                                                        self_loop), want)


@pytest.mark.parametrize("n_rows,n_cols,d", [(1, 1, 1), (7, 5, 3), (33, 20, 17), (50, 64, 64),
                                             (13, 40, 100)])
@pytest.mark.parametrize("index_dtype,col_dtype", [(torch.int64, torch.int32),
                                                   (torch.int32, torch.int32),
                                                   (torch.int32, torch.int64)])
@pytest.mark.parametrize("mode", ["build", "transpose"])
def test_csr_spmm_matches_dense(n_rows, n_cols, d, index_dtype, col_dtype, mode):
    rowptr, col, val = random_csr(n_rows, n_cols, long_row=min(4 * n_cols, 60), seed=d,
                                  index_dtype=index_dtype, col_dtype=col_dtype)
    a = dense_of(rowptr, col, val, n_cols)
    x = torch.randn(n_cols, d, dtype=torch.float64)
    x32 = x.float().requires_grad_()
    tr = K.csr_transpose(rowptr, col, n_cols) if mode == "transpose" else None
    y = csr_spmm(rowptr, col, val, x32, transpose=tr)
    g = torch.randn(n_rows, d, dtype=torch.float64)
    y.backward(g.float())
    torch.testing.assert_close(y.double(), a @ x32.detach().double(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x32.grad.double(), a.t() @ g, rtol=1e-5, atol=1e-5)


def test_csr_spmm_symmetric_reuses_csr_and_float64():
    rowptr, col, val = sym_norm_csr(40, seed=1)
    a = dense_of(rowptr, col, val, 40)
    torch.testing.assert_close(a, a.t())
    x = torch.randn(40, 9, dtype=torch.float64, requires_grad=True)
    y = csr_spmm(rowptr, col, val.double(), x, symmetric=True)
    assert y.dtype == torch.float64
    g = torch.randn_like(y)
    y.backward(g)
    torch.testing.assert_close(y, a @ x.detach())
    torch.testing.assert_close(x.grad, a @ g)


@pytest.mark.parametrize("dtype,tol", [(torch.bfloat16, 2e-2), (torch.float16, 2e-3)])
def test_csr_spmm_low_precision_accumulates_in_fp32(dtype, tol):
    rowptr, col, val = random_csr(20, 30, avg_deg=40, seed=3)
    x = torch.randn(30, 24).to(dtype)
    y = csr_spmm(rowptr, col, val, x)
    assert y.dtype == dtype
    ref = dense_of(rowptr, col, val, 30) @ x.double()
    torch.testing.assert_close(y.double(), ref, rtol=tol, atol=tol)


def test_csr_transpose():
    rowptr, col, val = random_csr(17, 11, seed=5, index_dtype=torch.int32)
    rt, ct, pt = K.csr_transpose(rowptr, col, 11)
    assert rt.dtype == rowptr.dtype and ct.dtype == col.dtype and pt.dtype == torch.int64
    at = dense_of(rt, ct, val[pt], 17)
    torch.testing.assert_close(at, dense_of(rowptr, col, val, 11).t())
    # rows of A^T list their columns in increasing order (stable sort)
    for r in range(11):
        seg = ct[rt[r]:rt[r + 1]]
        assert torch.all(seg[1:] >= seg[:-1])


@pytest.mark.parametrize("self_loop", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("mode", ["symmetric", "transpose", "build"])
@pytest.mark.parametrize("d_in,d_out", [(8, 8), (5, 3), (17, 33)])
def test_ngcf_layer_matches_dense(self_loop, bias, mode, d_in, d_out):
    n = 37
    if mode == "symmetric":
        rowptr, col, val = sym_norm_csr(n, seed=d_in)
    else:
        rowptr, col, val = random_csr(n, n, long_row=50, seed=d_in)
    g0 = torch.Generator().manual_seed(d_out)
    e = torch.randn(n, d_in, generator=g0, dtype=torch.float64)
    w1 = torch.randn(d_in, d_out, generator=g0, dtype=torch.float64) / d_in ** 0.5
    w2 = torch.randn(d_in, d_out, generator=g0, dtype=torch.float64) / d_in ** 0.5
    b = torch.randn(d_out, generator=g0, dtype=torch.float64) if bias else None
    up = torch.randn(n, d_out, generator=g0, dtype=torch.float64)
    ins = [t.clone().requires_grad_() for t in (e, w1, w2) + ((b,) if bias else ())]
    ref = reference.ngcf_layer(rowptr, col, val, *ins[:3], ins[3] if bias else None, 0.2,
                               self_loop)
    ref.backward(up)
    ours = [t.detach().float().requires_grad_() for t in ins]
    kw = dict(symmetric=mode == "symmetric",
              transpose=K.csr_transpose(rowptr, col, n) if mode == "transpose" else None)
    out = ngcf_layer(rowptr, col, val, *ours[:3], ours[3] if bias else None, 0.2, self_loop, **kw)
    out.backward(up.float())
    torch.testing.assert_close(out.double(), ref.detach(), rtol=1e-4, atol=1e-4)
    for o, r in zip(ours, ins):
        torch.testing.assert_close(o.grad.double(), r.grad, rtol=1e-4, atol=1e-4)


def test_ngcf_recompute_s_equals_saved(monkeypatch):
    from gnn.kernels import ngcf_cpu

    saved_s = []  # the S each backward got: (N, d_in) when saved, empty when recomputed
    backward = ngcf_cpu.ngcf_backward_blocks
    monkeypatch.setattr(ngcf_cpu, "ngcf_backward_blocks",
                        lambda grad, out, s, *a: saved_s.append(s.shape[0]) or
                        backward(grad, out, s, *a))
    rowptr, col, val = sym_norm_csr(30, seed=2)
    e = torch.randn(30, 8, requires_grad=True)
    w1, w2 = torch.randn(8, 4, requires_grad=True), torch.randn(8, 4, requires_grad=True)
    grads = []
    for recompute in (False, True):
        for t in (e, w1, w2):
            t.grad = None
        ngcf_layer(rowptr, col, val, e, w1, w2, symmetric=True,
                   recompute_s=recompute).sum().backward()
        grads.append([t.grad.clone() for t in (e, w1, w2)])
    assert saved_s == [30, 0]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


# ----------------------------------------------------------------------------- input checks

def _good():
    rowptr, col, val = random_csr(6, 5, seed=0)
    return rowptr, col, val, torch.randn(5, 4)


@pytest.mark.parametrize("case,arg", [
    ("x_dtype", "x"), ("x_ndim", "x"), ("x_noncontig", "x"), ("col_range", "col"),
    ("col_neg", "col"), ("rowptr_last", "rowptr"), ("rowptr_decreasing", "rowptr"),
    ("rowptr_dtype", "rowptr"), ("val_len", "val"), ("val_dtype", "val"), ("col_2d", "col"),
    ("rowptr_first", "rowptr"), ("transpose_len", "transpose"),
])
def test_csr_spmm_input_checks(case, arg):
    rowptr, col, val, x = _good()
    kw = {}
    if case == "x_dtype":
        x = x.to(torch.int64)
    elif case == "x_ndim":
        x = x[:, 0].contiguous()
    elif case == "x_noncontig":
        x = torch.randn(4, 5).t()
    elif case == "col_range":
        col = col.clone(); col[-1] = 5
    elif case == "col_neg":
        col = col.clone(); col[0] = -1
    elif case == "rowptr_last":
        rowptr = rowptr.clone(); rowptr[-1] += 1
    elif case == "rowptr_decreasing":
        rowptr = rowptr.clone(); rowptr[2] = rowptr[3] + 1; rowptr[-1] = col.numel()
    elif case == "rowptr_first":
        rowptr = rowptr.clone(); rowptr[0] = 1
    elif case == "rowptr_dtype":
        rowptr = rowptr.float()
    elif case == "val_len":
        val = val[:-1]
    elif case == "val_dtype":
        val = val.half()
    elif case == "col_2d":
        col = col[None]
    elif case == "transpose_len":
        rt, ct, pt = K.csr_transpose(rowptr, col, 5)
        kw["transpose"] = (rt[:-1], ct, pt)
    with pytest.raises(ValueError, match=rf"^csr_spmm\(\): argument '{arg}.*but got"):
        csr_spmm(rowptr, col, val, x, **kw)


def test_ngcf_input_checks():
    rowptr, col, val = sym_norm_csr(10, seed=0)
    e, w = torch.randn(10, 4), torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"^ngcf_layer\(\): argument 'w2'.*but got"):
        ngcf_layer(rowptr, col, val, e, w, torch.randn(3, 4))
    with pytest.raises(ValueError, match=r"^ngcf_layer\(\): argument 'rowptr' must have n_rows"):
        ngcf_layer(rowptr, col, val, e[:9], w, w)
    with pytest.raises(ValueError, match=r"^ngcf_layer\(\): argument 'e'.*but got"):
        ngcf_layer(rowptr, col, val, e[:, 0].contiguous(), w, w)
    with pytest.raises(ValueError, match=r"^ngcf_layer\(\): argument 'w1'.*but got"):
        ngcf_layer(rowptr, col, val, e, w.double(), w)
    with pytest.raises(ValueError, match=r"^ngcf_layer\(\): argument 'bias'.*but got"):
        ngcf_layer(rowptr, col, val, e, w, w, torch.zeros(4))
    with pytest.raises(ValueError, match=r"^ngcf_layer\(\): argument 'negative_slope'"):
        ngcf_layer(rowptr, col, val, e, w, w, None, -0.1)
    with pytest.raises(ValueError, match=r"^ngcf_layer\(\): argument 'val' is not differentiable "
                       r"here .* compose the layer from gnn.kernels.csr_spmm"):
        ngcf_layer(rowptr, col, val.clone().requires_grad_(), e, w, w)


# ----------------------------------------------------------------------------- value checks

@pytest.fixture
def host_reads(monkeypatch):
    """Counts the host reads of the value checks (each one a host-device sync on CUDA)."""
    from gnn.kernels import checks

    reads = []
    monkeypatch.setattr(checks, "_host_read", lambda t: reads.append(t.numel()) or t.tolist())
    return reads


def test_value_checks_run_once_per_graph(host_reads):
    from gnn.kernels.csr_transpose import csr_transpose_impl

    n, d = 23, 6
    rowptr, col, val = random_csr(n, n, long_row=30, seed=11)
    x = torch.randn(n, d)
    csr_spmm(rowptr, col, val, x)
    assert len(host_reads) == 1  # rowptr and col, in one read
    masked = val * (torch.rand(val.shape[0]) > 0.3)  # a new val (dropout) on the same graph
    csr_spmm(rowptr, col, masked, torch.randn(n, d))
    assert len(host_reads) == 1
    hand_made = csr_transpose_impl(rowptr, col, n)  # not built by csr_transpose: checked on use
    csr_spmm(rowptr, col, masked, x, transpose=hand_made)
    csr_spmm(rowptr, col, val, x, transpose=hand_made)
    assert len(host_reads) == 3  # its (rowptr_t, col_t) and its perm_t, once

    e = torch.randn(n, d, requires_grad=True)
    w1, w2 = torch.randn(d, d, requires_grad=True), torch.randn(d, d, requires_grad=True)
    tr = K.csr_transpose(rowptr, col, n)  # built from a checked CSR: valid by construction

    def step(v):
        h = ngcf_layer(rowptr, col, v, e, w1, w2, transpose=tr)
        y = csr_spmm(rowptr, col, v, h, transpose=tr)
        csr_spmm(rowptr, col, v, y).square().sum().backward()  # A^T built in the backward

    step(val)
    step(masked)
    assert len(host_reads) == 3


def test_value_check_reruns_after_an_in_place_write(host_reads):
    rowptr, col, val, x = _good()
    csr_spmm(rowptr, col, val, x)
    col[0] = x.shape[0]  # out of range, written through torch: the version counter moves
    with pytest.raises(ValueError, match=r"^csr_spmm\(\): argument 'col' must hold"):
        csr_spmm(rowptr, col, val, x)
    assert len(host_reads) == 2


def test_tensor_cache_forgets_freed_tensors():
    import gc

    from gnn.kernels.tensor_cache import TensorCache

    cache = TensorCache()
    a, b = torch.arange(3), torch.arange(4)
    cache.put((a, b), "fact", ("extra",))
    assert cache.get((a, b), ("extra",)) == "fact"
    assert cache.get((a, b), ("other",)) is None and cache.get((b, a), ("extra",)) is None
    a.add_(1)  # a new version
    assert cache.get((a, b), ("extra",)) is None
    cache.put((a, b), "fact", ("extra",))
    del b
    gc.collect()
    assert len(cache) == 0  # both versions' entries went with b


# ----------------------------------------------------------------------------- torch.library

def test_opcheck_all_ops():
    import importlib

    spmm_op = importlib.import_module("gnn.kernels.csr_spmm")._csr_spmm_op
    transpose_op = importlib.import_module("gnn.kernels.csr_transpose").csr_transpose_op
    layer = importlib.import_module("gnn.kernels.ngcf_layer")

    rowptr, col, val = random_csr(9, 7, seed=4)
    x = torch.randn(7, 5, requires_grad=True)
    rt, ct, pt = K.csr_transpose(rowptr, col, 7)
    knobs = ("torch", 16)  # backend, long_threshold
    torch.library.opcheck(spmm_op, (rowptr, col, val, x, False, None, None, None) + knobs)
    torch.library.opcheck(spmm_op, (rowptr, col, val, x, False, rt, ct, pt) + knobs)
    torch.library.opcheck(transpose_op, (rowptr, col, 7))
    rowptr, col, val = sym_norm_csr(12, seed=4)
    e = torch.randn(12, 6, requires_grad=True)
    w1, w2 = torch.randn(6, 4, requires_grad=True), torch.randn(6, 4, requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    for save_s in (True, False):
        torch.library.opcheck(layer._ngcf_fwd_op, (rowptr, col, val, e, w1, w2, b, 0.2, True,
                                                 save_s, True, None, None, None) + knobs)
    out, s = layer._ngcf_fwd_op(rowptr, col, val, e, w1, w2, None, 0.2, False, True, True,
                              None, None, None, *knobs)
    torch.library.opcheck(layer._ngcf_bwd_op, (torch.randn_like(out), out.detach(), s.detach(),
                                             rowptr, col, val, rowptr, col, val, e.detach(),
                                             w1.detach(), w2.detach(), 0.2, False) + knobs)


class _TinyNGCF(torch.nn.Module):
    def __init__(self, n, d):
        super().__init__()
        self.emb = torch.nn.Parameter(torch.randn(n, d) * 0.1)
        self.w1 = torch.nn.Parameter(torch.randn(d, d) * 0.1)
        self.w2 = torch.nn.Parameter(torch.randn(d, d) * 0.1)
        self.b = torch.nn.Parameter(torch.zeros(d))

    def forward(self, rowptr, col, val, transpose):
        h = ngcf_layer(rowptr, col, val, self.emb, self.w1, self.w2, self.b, transpose=transpose)
        h2 = csr_spmm(rowptr, col, val, h, transpose=transpose)
        h3 = csr_spmm(rowptr, col, val, h2)  # transpose built in the backward
        return (F.normalize(h, dim=1) * h3).sum()


def test_torch_compile_fullgraph_forward_backward():
    torch._dynamo.reset()
    rowptr, col, val = random_csr(15, 15, seed=7)
    tr = K.csr_transpose(rowptr, col, 15)
    model = _TinyNGCF(15, 8)
    loss = model(rowptr, col, val, tr)
    loss.backward()
    want = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    loss_c = compiled(rowptr, col, val, tr)
    loss_c.backward()
    torch.testing.assert_close(loss_c, loss)
    for p, w in zip(model.parameters(), want):
        torch.testing.assert_close(p.grad, w)


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1", reason="needs compiled triton")
def test_torch_compile_sees_a_changed_default(monkeypatch):
    """Assigning gnn.kernels.defaults after a compile takes effect (dynamo guards on it)."""
    torch._dynamo.reset()
    rowptr, col, val, x = _good()
    f = torch.compile(lambda x: K.csr_spmm(rowptr, col, val, x), fullgraph=True,
                      backend="aot_eager")
    monkeypatch.setattr(defaults, "backend", "torch")
    torch.testing.assert_close(f(x), csr_spmm(rowptr, col, val, x))
    monkeypatch.setattr(defaults, "backend", "triton")  # CPU tensors, no interpreter: an error
    with pytest.raises(Exception, match="TRITON_INTERPRET"):
        f(x)
