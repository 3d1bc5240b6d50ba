"""The Triton kernels against a float64 oracle: outputs and every gradient, odd sizes,
empty rows, one very long row, d not a power of two, int32/int64 indices, fp32/bf16/fp16.

Where they run: on a CUDA machine directly; here (no GPU) in the Triton interpreter, through
``test_triton_suite_in_interpreter``, which re-runs this file in a subprocess with
TRITON_INTERPRET=1 (tests/kernels/interpreter.py says why).
"""
import pytest
import torch
import triton.language as tl

import gnn.kernels as K
from gnn.kernels import ngcf_triton as NL
from gnn.kernels import reference
from gnn.kernels import spmm_triton as SP
from gnn.kernels.csr_transpose import csr_transpose_impl
from gnn.kernels.ngcf_layer import FUSED_MAX_DIM, composed_backward, composed_forward
from gnn.kernels.spmm_triton import spmm_triton
from interpreter import CUDA, CUDA_ONLY, DEV, INTERPRET, here, launcher, run_in_interpreter
from kernel_graphs import close, dense_of, power_law_csr, random_csr, sym_norm_csr

BLOCK_M = None if CUDA else 16  # interpreter: smaller blocks, more of them
TOL = {torch.float32: 2e-5, torch.float16: 4e-3, torch.bfloat16: 3e-2}
NGCF_TOL = {torch.float32: 1e-4, torch.float16: 4e-3, torch.bfloat16: 2e-2}


@launcher
def test_triton_suite_in_interpreter():
    run_in_interpreter(__file__, min_passed=50)


# ----------------------------------------------------------------------------- SpMM kernels

SPMM_CASES = [  # (n_rows, n_cols, d, long_row, long_threshold)
    (1, 1, 1, None, None), (7, 5, 3, None, None), (33, 20, 17, 70, None),
    (29, 31, 64, 90, 16), (13, 40, 100, 45, 8), (9, 11, 130, 40, 16), (5, 3, 512, 20, 8),
]


@here
@pytest.mark.parametrize("n_rows,n_cols,d,long_row,thr", SPMM_CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("has_add", [False, True])
def test_spmm_kernel(n_rows, n_cols, d, long_row, thr, dtype, has_add):
    idx = [(torch.int64, torch.int32), (torch.int32, torch.int32), (torch.int32, torch.int64),
           (torch.int64, torch.int64)][(d + has_add) % 4]
    rowptr, col, val = random_csr(n_rows, n_cols, long_row=long_row, seed=d, index_dtype=idx[0],
                                  col_dtype=idx[1], device=DEV)
    x = torch.randn(n_cols, d, device=DEV).to(dtype)
    add = torch.randn(n_rows, d, device=DEV) if has_add else None
    y = spmm_triton(rowptr, col, val, x, add=add, long_threshold=thr)
    assert y.dtype == dtype and y.shape == (n_rows, d)
    ref = dense_of(rowptr, col, val, n_cols) @ x.double().cpu()
    if has_add:
        ref += add.double().cpu()
    close(y, ref, TOL[dtype], "spmm")


@here
def test_spmm_empty_graph_and_all_empty_rows():
    x = torch.randn(4, 6, device=DEV)
    rowptr = torch.zeros(6, dtype=torch.int64, device=DEV)
    col = torch.zeros(0, dtype=torch.int32, device=DEV)
    val = torch.zeros(0, device=DEV)
    y = spmm_triton(rowptr, col, val, x)
    assert y.shape == (5, 6) and (y == 0).all()
    y0 = spmm_triton(torch.zeros(1, dtype=torch.int64, device=DEV), col, val, x)
    assert y0.shape == (0, 6)


@here
def test_spmm_deterministic_bitwise():
    rowptr, col, val = random_csr(40, 30, avg_deg=6, long_row=200, seed=9, device=DEV)
    x = torch.randn(30, 37, device=DEV)
    a = spmm_triton(rowptr, col, val, x, long_threshold=16)
    b = spmm_triton(rowptr, col, val, x, long_threshold=16)
    assert torch.equal(a, b)


@here
@pytest.mark.parametrize("d,dtype,thr", [(64, torch.float32, 8), (37, torch.bfloat16, 32),
                                         (16, torch.float16, 1024), (130, torch.float32, 8)])
def test_spmm_power_law(d, dtype, thr):
    """Power-law degrees (many programs, blocks whose lanes differ in length: masked steps),
    isolated nodes, rows cut into many segments; every row against the float64 oracle."""
    rowptr, col, val = power_law_csr(300, 260, seed=d, device=DEV)
    x = torch.randn(260, d, device=DEV).to(dtype)
    add = torch.randn(300, d, device=DEV)
    y = spmm_triton(rowptr, col, val, x, add=add, long_threshold=thr)
    ref = dense_of(rowptr, col, val, 260) @ x.double().cpu() + add.double().cpu()
    close(y, ref, TOL[dtype], "spmm power law")


@here
def test_spmm_wide_offsets(monkeypatch):
    """The int64 paths: x offsets (n_cols * stride >= 2^31) and item starts (nnz >= 2^31),
    forced on a small graph by lowering the limits."""
    monkeypatch.setattr(SP, "OFFSET32_LIMIT", 1)
    monkeypatch.setattr(SP, "INDEX32_LIMIT", 1)
    rowptr, col, val = power_law_csr(90, 70, seed=3, device=DEV)
    x = torch.randn(70, 24, device=DEV)
    y = spmm_triton(rowptr, col, val, x, long_threshold=16)
    assert SP.schedule(rowptr, 16, col.shape[0]).items[0].dtype == torch.int64
    close(y, dense_of(rowptr, col, val, 70) @ x.double().cpu(), TOL[torch.float32], "int64")


def test_schedule_covers_every_nonzero_once():
    """The work items: sorted longest first, at most T each, every nonzero of every row in
    exactly one item (rows <= T whole, longer rows in T-segments in order); the fused order."""
    rowptr, col, val = power_law_csr(200, 150, seed=5)
    t = 7
    sched = SP.Schedule(rowptr, t, col.shape[0])
    start, length, out = (a.long() for a in sched.items)
    assert (length[:-1] >= length[1:]).all() and (length <= t).all()
    deg = torch.diff(rowptr)
    covered = torch.zeros(col.shape[0], dtype=torch.int64)
    for s, n in zip(start.tolist(), length.tolist()):
        covered[s:s + n] += 1
    assert (covered == 1).all()
    rows = out[out >= 0]
    assert sorted(rows.tolist()) == torch.nonzero(deg <= t).flatten().tolist()
    assert sched.rows.tolist() == torch.nonzero(deg > t).flatten().tolist()
    segs = -1 - out[out < 0]
    assert sorted(segs.tolist()) == list(range(sched.n_seg))
    seg_start = torch.empty(sched.n_seg, dtype=torch.int64)
    seg_start[segs] = start[out < 0]
    for i, r in enumerate(sched.rows.tolist()):  # a long row's segments, in order
        s0, s1 = sched.seg_ptr[i].item(), sched.seg_ptr[i + 1].item()
        assert seg_start[s0:s1].tolist() == list(range(rowptr[r].item(), rowptr[r + 1].item(), t))
    f_start, f_len, f_row = (a.long() for a in sched.fused)
    n_light = 200 - sched.n_long
    assert sorted(f_row.tolist()) == list(range(200))
    assert (f_len[:n_light] == deg[f_row[:n_light]]).all() and (f_len[n_light:] == 0).all()
    assert (f_len[:n_light - 1] >= f_len[1:n_light]).all()
    assert f_row[n_light:].tolist() == sched.rows.tolist()


# ----------------------------------------------------------------------------- fused NGCF

def _ngcf_oracle(csr, *args):
    """kernels/reference.py's float64 layer on the CPU copy of a CSR."""
    return reference.ngcf_layer(*(t.cpu() for t in csr), *args)


NGCF_CASES = [  # (n, d_in, d_out, bias, self_loop, save_s, long_thr, dtype)
    (37, 8, 8, True, True, True, 8, torch.float32),
    (37, 5, 3, False, False, False, 8, torch.float32),
    (41, 17, 33, True, False, True, None, torch.float32),
    (23, 64, 64, False, True, False, 16, torch.float32),
    (19, 100, 128, True, True, True, 8, torch.float32),
    (30, 16, 24, True, True, False, 8, torch.bfloat16),
    (30, 64, 64, False, True, True, 16, torch.bfloat16),
    (26, 12, 20, True, False, False, 8, torch.float16),
    (26, 64, 48, True, True, True, None, torch.float16),
    (21, 130, 7, True, True, True, 8, torch.float32),   # beyond FUSED_MAX_DIM: composed path
]


def ngcf_forward(*args, save_s, long_threshold):
    """The Triton forward ngcf_layer's dispatch runs: fused, or the Triton SpMM + dense step."""
    if max(args[3].shape[1], args[4].shape[1]) <= FUSED_MAX_DIM:
        return NL.ngcf_forward_triton(*args, save_s, long_threshold=long_threshold,
                                      block_m=BLOCK_M)
    out, s = composed_forward(*args, backend="triton", long_threshold=long_threshold or 1024)
    return out, s if save_s else s[:0]


def ngcf_backward(*args, long_threshold):
    if max(args[9].shape[1], args[10].shape[1]) <= FUSED_MAX_DIM:
        return NL.ngcf_backward_triton(*args, long_threshold=long_threshold, block_m=BLOCK_M,
                                       n_programs=None if CUDA else 2)
    return composed_backward(*args, backend="triton", long_threshold=long_threshold or 1024)


@here
@pytest.mark.parametrize("n,d_in,d_out,bias,self_loop,save_s,thr,dtype", NGCF_CASES)
@pytest.mark.parametrize("slope", [0.2])
def test_ngcf_fused_kernels(n, d_in, d_out, bias, self_loop, save_s, thr, dtype, slope):
    """Forward vs the dense float64 oracle on the same (dtype-rounded) inputs; backward vs the
    layer's one backward formula (kernels/ngcf_step.py, composed with the exact float64 SpMM)
    given our forward's output (so that a LeakyReLU input within rounding of 0, whose branch
    may legitimately differ in bf16, does not count as an error)."""
    rowptr, col, val = random_csr(n, n, avg_deg=4, long_row=45, seed=d_in + d_out,
                                  index_dtype=torch.int32 if d_in % 2 else torch.int64,
                                  device=DEV)
    g = torch.Generator().manual_seed(n)
    rnd = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)  # noqa: E731
    e, up = rnd(n, d_in), rnd(n, d_out)
    w1, w2 = rnd(d_in, d_out) / d_in ** 0.5, rnd(d_in, d_out) / d_in ** 0.5
    b = rnd(d_out) if bias else None
    dev = lambda t: t.to(DEV) if t is not None else None  # noqa: E731
    f64 = lambda t: t.double() if t is not None else None  # noqa: E731
    tol = NGCF_TOL[dtype]

    out, s = ngcf_forward(rowptr, col, val, dev(e), dev(w1), dev(w2), dev(b), slope, self_loop,
                          save_s=save_s, long_threshold=thr)
    assert out.dtype == dtype and s.shape[0] == (n if save_s else 0)
    close(out, _ngcf_oracle((rowptr, col, val), f64(e), f64(w1), f64(w2), f64(b), slope,
                            self_loop), tol, "out")
    if save_s:
        close(s, reference.spmm(rowptr.cpu(), col.cpu(), val.cpu(), f64(e)), TOL[dtype], "S")

    rt, ct, pt = csr_transpose_impl(rowptr, col, n)
    de, dw1, dw2, db = ngcf_backward(
        dev(up), out, s, rowptr, col, val, rt, ct, val[pt], dev(e), dev(w1), dev(w2), slope,
        self_loop, long_threshold=thr)
    cpu = lambda t: t.cpu()  # noqa: E731
    want = composed_backward(
        f64(up), f64(cpu(out)), torch.empty(0, d_in, dtype=torch.float64), cpu(rowptr), cpu(col),
        cpu(val).double(), cpu(rt), cpu(ct), cpu(val[pt]).double(), f64(e), f64(w1), f64(w2),
        slope, self_loop, backend="torch", long_threshold=1024)
    for got, ref, name in zip((de, dw1, dw2, db), want, ("de", "dw1", "dw2", "db")):
        if name != "db" or bias:
            close(got, ref, tol, name)


@here
@pytest.mark.parametrize("save_s,dtype", [(True, torch.float32), (False, torch.bfloat16)])
def test_ngcf_fused_power_law(save_s, dtype):
    """Power-law degrees, isolated nodes and empty rows, many rows longer than T (their S from
    the compact buffer), blocks of unequal lanes; S saved and recomputed."""
    n, d_in, d_out = 150, 24, 40
    rowptr, col, val = power_law_csr(n, n, seed=11, device=DEV)
    g = torch.Generator().manual_seed(2)
    rnd = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)  # noqa: E731
    e, up, b = rnd(n, d_in), rnd(n, d_out), rnd(d_out)
    w1, w2 = rnd(d_in, d_out) / d_in ** 0.5, rnd(d_in, d_out) / d_in ** 0.5
    dev = lambda t: t.to(DEV)  # noqa: E731
    out, s = NL.ngcf_forward_triton(rowptr, col, val, dev(e), dev(w1), dev(w2), dev(b), 0.2, True,
                                    save_s, long_threshold=8, block_m=BLOCK_M)
    assert SP.schedule(rowptr, 8, col.shape[0]).n_long > 5
    csr = tuple(t.cpu() for t in (rowptr, col, val))
    close(out, reference.ngcf_layer(*csr, e.double(), w1.double(), w2.double(), b.double(), 0.2,
                                    True), NGCF_TOL[dtype], "out")
    rt, ct, pt = csr_transpose_impl(rowptr, col, n)
    got = NL.ngcf_backward_triton(dev(up), out, s, rowptr, col, val, rt, ct, val[pt], dev(e),
                                  dev(w1), dev(w2), 0.2, True, long_threshold=8, block_m=BLOCK_M)
    want = composed_backward(up.double(), out.double().cpu(), torch.empty(0, d_in).double(), *csr,
                             rt.cpu(), ct.cpu(), val[pt].double().cpu(), e.double(), w1.double(),
                             w2.double(), 0.2, True, backend="torch", long_threshold=1024)
    for a, r, name in zip(got, want, ("de", "dw1", "dw2", "db")):
        close(a, r, NGCF_TOL[dtype], name)


def test_ngcf_fp32_products_follow_torch_matmul_precision():
    e = torch.empty(2, 3)
    assert NL.ngcf_config(e, 64, 64)["PREC"] == "tf32x3"  # torch's default, "highest"
    old = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")
        assert NL.ngcf_config(e, 64, 64)["PREC"] == "tf32"
    finally:
        torch.set_float32_matmul_precision(old)


@here
def test_ngcf_backward_deterministic_bitwise():
    rowptr, col, val = sym_norm_csr(50, avg_deg=6, seed=3, device=DEV)
    e, w1, w2 = torch.randn(50, 16, device=DEV), torch.randn(16, 16, device=DEV), torch.randn(16, 16, device=DEV)
    out, s = NL.ngcf_forward_triton(rowptr, col, val, e, w1, w2, None, 0.2, True, True, block_m=BLOCK_M)
    up = torch.randn_like(out)
    r1 = NL.ngcf_backward_triton(up, out, s, rowptr, col, val, rowptr, col, val, e, w1, w2, 0.2, True,
                                 block_m=BLOCK_M)
    r2 = NL.ngcf_backward_triton(up, out, s, rowptr, col, val, rowptr, col, val, e, w1, w2, 0.2, True,
                                 block_m=BLOCK_M)
    for a, b in zip(r1, r2):
        assert torch.equal(a, b)


@pytest.mark.skipif(not INTERPRET, reason="compiled kernels always take the for form")
def test_while_loop_form(monkeypatch):
    """Every loop with run-time bounds also has a ``while`` form (the one triton 3.6's
    interpreter can run, see spmm_triton.FOR_LOOPS); force it, so that both forms are checked under any
    triton version: long-row segments, several output tiles, several blocks per program."""
    for module in (SP, NL):
        monkeypatch.setattr(module, "FOR_LOOPS", tl.constexpr(False))
    test_spmm_kernel(29, 31, 64, 90, 16, torch.float32, True)  # 6 segments in one row
    test_spmm_power_law(64, torch.float32, 8)  # masked and unmasked steps, segments
    test_ngcf_fused_kernels(19, 100, 128, True, True, False, 8, torch.float32, 0.2)  # 4 tiles
    test_ngcf_fused_kernels(37, 5, 3, False, False, False, 8, torch.float32, 0.2)  # 3 blocks, P=2
    test_ngcf_fused_power_law(False, torch.bfloat16)  # masked steps, long rows, recomputed S


# ----------------------------------------------------------------------------- public API on Triton

# every public call below runs the Triton backend, with a small T to exercise the long-row path
TRITON = dict(backend="triton", long_threshold=16)


@here
@pytest.mark.parametrize("mode", ["symmetric", "transpose", "build"])
def test_public_api_on_triton(mode):
    n, d = 45, 24
    if mode == "symmetric":
        rowptr, col, val = sym_norm_csr(n, avg_deg=8, seed=1, device=DEV)
    else:
        rowptr, col, val = random_csr(n, n, avg_deg=5, long_row=40, seed=2, device=DEV)
    assert K.get_backend(rowptr.device, "triton") == "triton"
    kw = dict(TRITON, symmetric=mode == "symmetric",
              transpose=K.csr_transpose(rowptr, col, n) if mode == "transpose" else None)
    g = torch.Generator().manual_seed(0)
    e = torch.randn(n, d, generator=g, dtype=torch.float64)
    w1, w2 = (torch.randn(d, d, generator=g, dtype=torch.float64) / d ** 0.5 for _ in range(2))
    b = torch.randn(d, generator=g, dtype=torch.float64)
    up = torch.randn(n, d, generator=g, dtype=torch.float64)
    ref_in = [t.clone().requires_grad_() for t in (e, w1, w2, b)]
    csr = tuple(t.cpu() for t in (rowptr, col, val))
    ref = reference.spmm(*csr, reference.ngcf_layer(*csr, *ref_in, 0.2, True))
    ref.backward(up)
    ours = [t.float().to(DEV).requires_grad_() for t in (e, w1, w2, b)]
    h = K.ngcf_layer(rowptr, col, val, *ours, recompute_s=mode == "build", **kw)
    y = K.csr_spmm(rowptr, col, val, h, **kw)
    assert ((rowptr,), (16,)) in SP._SCHEDULES  # long_threshold reached the kernels
    y.backward(up.float().to(DEV))
    close(y, ref, 1e-4, "y")
    for o, r, name in zip(ours, ref_in, ("e", "w1", "w2", "b")):
        close(o.grad, r.grad, 1e-4, name)


def _float64_case(val_dtype):
    n, d = 13, 5
    rowptr, col, val = random_csr(n, n, avg_deg=4, long_row=30, seed=6, device=DEV)
    val = val.to(val_dtype)
    g = torch.Generator().manual_seed(1)
    e, w1, w2 = (torch.randn(*shape, generator=g, dtype=torch.float64)
                 for shape in ((n, d), (d, 3), (d, 3)))
    b = torch.randn(3, generator=g, dtype=torch.float64)
    return (rowptr, col, val), dense_of(rowptr, col, val, n), (e, w1, w2, b)


# float64 on the Triton backend takes the exact torch path: values to 1e-12 of the dense oracle
# and gradcheck. (Before: csr_spmm refused float64, ngcf_layer silently computed in float32.)

@here
@pytest.mark.parametrize("val_dtype", [torch.float32, torch.float64])
def test_csr_spmm_float64_is_exact(val_dtype):
    (rowptr, col, val), a, (e, *_) = _float64_case(val_dtype)
    x = e.to(DEV).requires_grad_()
    y = K.csr_spmm(rowptr, col, val, x, **TRITON)
    assert y.dtype == torch.float64
    close(y, a @ e, 1e-12, "csr_spmm float64")
    assert torch.autograd.gradcheck(lambda x: K.csr_spmm(rowptr, col, val, x, **TRITON), (x,))


@here
@pytest.mark.parametrize("val_dtype", [torch.float32, torch.float64])
def test_ngcf_layer_float64_is_exact(val_dtype):
    (rowptr, col, val), a, ins = _float64_case(val_dtype)
    tr = K.csr_transpose(rowptr, col, a.shape[0])
    ours = tuple(t.to(DEV).requires_grad_() for t in ins)
    out = K.ngcf_layer(rowptr, col, val, *ours, transpose=tr, **TRITON)
    assert out.dtype == torch.float64
    close(out, _ngcf_oracle((rowptr, col, val), *ins, 0.2, True), 1e-12, "ngcf_layer float64")
    assert torch.autograd.gradcheck(
        lambda *t: K.ngcf_layer(rowptr, col, val, *t, transpose=tr, **TRITON), ours)


@pytest.mark.skipif(not CUDA, reason=CUDA_ONLY)
def test_second_step_does_no_host_sync():
    """After the first step on a graph, forward + backward of both ops with a new val (dropout
    mask) never syncs: index checks and long-row schedules are cached per graph."""
    n, d = 300, 32
    rowptr, col, val = random_csr(n, n, avg_deg=6, long_row=200, seed=3, device=DEV)
    tr = K.csr_transpose(rowptr, col, n)
    e, w1, w2 = (torch.randn(*shape, device=DEV, requires_grad=True)
                 for shape in ((n, d), (d, d), (d, d)))

    def step():
        v = val * (torch.rand(val.shape[0], device=DEV) > 0.1)
        h = K.ngcf_layer(rowptr, col, v, e, w1, w2, transpose=tr, **TRITON)
        K.csr_spmm(rowptr, col, v, h, transpose=tr, **TRITON).square().sum().backward()

    step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


@here
def test_torch_compile_on_triton():
    torch._dynamo.reset()
    rowptr, col, val = sym_norm_csr(20, seed=5, device=DEV)
    e = torch.randn(20, 16, device=DEV, requires_grad=True)
    w = torch.randn(16, 16, device=DEV, requires_grad=True)

    def f(e, w):
        h = K.ngcf_layer(rowptr, col, val, e, w, w, symmetric=True, **TRITON)
        return K.csr_spmm(rowptr, col, val, h, symmetric=True, **TRITON).square().sum()

    f(e, w).backward()
    want = e.grad.clone(), w.grad.clone()
    e.grad = w.grad = None
    torch.compile(f, fullgraph=True, backend="aot_eager")(e, w).backward()
    close(e.grad, want[0], 1e-5, "de")
    close(w.grad, want[1], 1e-5, "dw")
