"""Input checks shared by every entry point, run before any kernel launch.

Errors read like torch's own: ``ValueError("csr_spmm(): argument 'col' ... but got ...")``.

Metadata checks (type, dtype, shape, device, contiguity) run at every call and cost nothing.
Value checks (rowptr[0] == 0, non-decreasing, rowptr[-1] == nnz, 0 <= col < n_cols,
0 <= perm_t < nnz) need a few reductions and one host read, a host-device sync on CUDA; they
run once per CSR: a passed check is remembered per index tensors (identity and version,
kernels/tensor_cache.py), so later calls on the same graph, with any ``val`` (e.g. a dropout
mask), read nothing back (no host-device sync). A transpose built by
``csr_transpose`` from a checked CSR is valid by construction and is remembered as such.
"""
from __future__ import annotations

import torch

from .tensor_cache import TensorCache

INDEX_DTYPES = (torch.int32, torch.int64)
FEATURE_DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)
VALUE_DTYPES = (torch.float32, torch.float64)


def _fail(fn: str, arg: str, what: str, got) -> None:
    raise ValueError(f"{fn}(): argument '{arg}' {what}, but got {got}")


def check_tensor(fn, name, t, *, dtypes, ndim, device=None):
    if not isinstance(t, torch.Tensor):
        _fail(fn, name, "must be a torch.Tensor", type(t).__name__)
    if t.layout != torch.strided:
        _fail(fn, name, "must be a dense (strided) tensor", t.layout)
    if t.dtype not in dtypes:
        _fail(fn, name, f"must have dtype in {[str(d) for d in dtypes]}", t.dtype)
    if t.dim() != ndim:
        _fail(fn, name, f"must be {ndim}-D", f"shape {tuple(t.shape)}")
    if device is not None and t.device != device:
        _fail(fn, name, f"must be on the same device as the other inputs ({device})", t.device)
    if not t.is_contiguous():
        _fail(fn, name, "must be contiguous", f"strides {t.stride()}")


def check_csr_meta(fn, rowptr, col, val, device, n_rows=None, prefix=""):
    """Metadata of a CSR triple (works on fake tensors too)."""
    check_tensor(fn, prefix + "rowptr", rowptr, dtypes=INDEX_DTYPES, ndim=1, device=device)
    check_tensor(fn, prefix + "col", col, dtypes=INDEX_DTYPES, ndim=1, device=device)
    check_tensor(fn, prefix + "val", val, dtypes=VALUE_DTYPES, ndim=1, device=device)
    if rowptr.shape[0] < 1:
        _fail(fn, prefix + "rowptr", "must have n_rows + 1 >= 1 entries", "an empty tensor")
    if n_rows is not None and rowptr.shape[0] != n_rows + 1:
        _fail(fn, prefix + "rowptr", f"must have n_rows + 1 = {n_rows + 1} entries",
              f"{rowptr.shape[0]}")
    if val.shape[0] != col.shape[0]:
        _fail(fn, prefix + "val", f"must have as many entries as col ({col.shape[0]})",
              f"{val.shape[0]}")


_CHECKED = TensorCache()  # (rowptr, col) + ("csr", n_cols) and (perm,) + ("perm", nnz)


def _host_read(t: torch.Tensor) -> list:
    """The one host read of a value check (a sync on CUDA): tests count its calls."""
    return t.tolist()


def check_csr_values(fn, rowptr, col, n_cols: int, prefix="") -> None:
    """rowptr[0] == 0, non-decreasing, rowptr[-1] == nnz, 0 <= col < n_cols (once per CSR)."""
    if _CHECKED.get((rowptr, col), ("csr", n_cols)):
        return
    nnz = col.shape[0]
    with torch.no_grad():
        if rowptr.numel() > 1:
            d_min = torch.diff(rowptr).min().to(torch.int64)
        else:
            d_min = rowptr.new_zeros((), dtype=torch.int64)
        first, last = rowptr[0].to(torch.int64), rowptr[-1].to(torch.int64)
        if nnz:
            c_min, c_max = col.min().to(torch.int64), col.max().to(torch.int64)
        else:
            c_min = c_max = rowptr.new_zeros((), dtype=torch.int64)
        first, last, d_min, c_min, c_max = _host_read(
            torch.stack([first, last, d_min, c_min, c_max]))
    if first != 0:
        _fail(fn, prefix + "rowptr", "must start at 0", f"rowptr[0] = {first}")
    if d_min < 0:
        _fail(fn, prefix + "rowptr", "must be non-decreasing", f"a decrease of {d_min}")
    if last != nnz:
        _fail(fn, prefix + "rowptr", f"must end at nnz = len(col) = {nnz}", f"rowptr[-1] = {last}")
    if nnz and (c_min < 0 or c_max >= n_cols):
        _fail(fn, prefix + "col", f"must hold column indices in [0, {n_cols})",
              f"values in [{c_min}, {c_max}]")
    _CHECKED.put((rowptr, col), True, ("csr", n_cols))


def check_perm_values(fn, perm, nnz: int, name="perm_t") -> None:
    """0 <= perm < nnz (once per tensor)."""
    if nnz == 0 or _CHECKED.get((perm,), ("perm", nnz)):
        return
    with torch.no_grad():
        lo, hi = _host_read(torch.stack([perm.min().to(torch.int64), perm.max().to(torch.int64)]))
    if lo < 0 or hi >= nnz:
        _fail(fn, name, f"must hold positions in [0, {nnz})", f"values in [{lo}, {hi}]")
    _CHECKED.put((perm,), True, ("perm", nnz))


def remember_transpose(transpose, n_rows: int, nnz: int) -> None:
    """Mark (rowptr_t, col_t, perm_t), just built by csr_transpose from a checked CSR of
    n_rows rows and nnz entries, as checked: it is valid by construction."""
    rowptr_t, col_t, perm_t = transpose
    _CHECKED.put((rowptr_t, col_t), True, ("csr", n_rows))
    _CHECKED.put((perm_t,), True, ("perm", nnz))


def check_transpose(fn, transpose, n_rows, n_cols, nnz, device, values=True):
    """transpose = (rowptr_t, col_t, perm_t) of an (n_rows x n_cols) CSR with nnz entries."""
    if transpose is None:
        return
    if not (isinstance(transpose, (tuple, list)) and len(transpose) == 3):
        _fail(fn, "transpose", "must be a tuple (rowptr_t, col_t, perm_t)", type(transpose).__name__)
    rowptr_t, col_t, perm_t = transpose
    check_tensor(fn, "transpose[0] (rowptr_t)", rowptr_t, dtypes=INDEX_DTYPES, ndim=1, device=device)
    check_tensor(fn, "transpose[1] (col_t)", col_t, dtypes=INDEX_DTYPES, ndim=1, device=device)
    check_tensor(fn, "transpose[2] (perm_t)", perm_t, dtypes=INDEX_DTYPES, ndim=1, device=device)
    if rowptr_t.shape[0] != n_cols + 1:
        _fail(fn, "transpose[0] (rowptr_t)", f"must have n_cols + 1 = {n_cols + 1} entries",
              rowptr_t.shape[0])
    if col_t.shape[0] != nnz or perm_t.shape[0] != nnz:
        _fail(fn, "transpose", f"must hold col_t and perm_t of nnz = {nnz} entries",
              f"{col_t.shape[0]} and {perm_t.shape[0]}")
    if values:
        check_csr_values(fn, rowptr_t, col_t, n_rows, prefix="transpose ")
        check_perm_values(fn, perm_t, nnz, name="transpose[2] (perm_t)")


def check_spmm(fn, rowptr, col, val, x, transpose=None, values=True):
    if not isinstance(x, torch.Tensor):
        _fail(fn, "x", "must be a torch.Tensor", type(x).__name__)
    check_tensor(fn, "x", x, dtypes=FEATURE_DTYPES, ndim=2)
    check_csr_meta(fn, rowptr, col, val, x.device)
    n_rows, n_cols, nnz = rowptr.shape[0] - 1, x.shape[0], col.shape[0]
    check_transpose(fn, transpose, n_rows, n_cols, nnz, x.device, values=values)
    if values:
        check_csr_values(fn, rowptr, col, n_cols)


def check_sddmm(fn, rowptr, col, a, b, values=True):
    """A CSR structure (rowptr, col) of len(a) rows and len(b) columns, a and b of one width."""
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, torch.Tensor):
            _fail(fn, name, "must be a torch.Tensor", type(t).__name__)
    check_tensor(fn, "a", a, dtypes=FEATURE_DTYPES, ndim=2)
    check_tensor(fn, "b", b, dtypes=FEATURE_DTYPES, ndim=2, device=a.device)
    if b.shape[1] != a.shape[1]:
        _fail(fn, "b", f"must have as many columns as a ({a.shape[1]})", f"shape {tuple(b.shape)}")
    check_csr_meta(fn, rowptr, col, col.new_empty(col.shape, dtype=torch.float32), a.device,
                   n_rows=a.shape[0])
    if values:
        check_csr_values(fn, rowptr, col, b.shape[0])


def check_ngcf(fn, rowptr, col, val, e, w1, w2, bias, negative_slope, transpose=None, values=True):
    if not isinstance(e, torch.Tensor):
        _fail(fn, "e", "must be a torch.Tensor", type(e).__name__)
    check_tensor(fn, "e", e, dtypes=FEATURE_DTYPES, ndim=2)
    n, d_in = e.shape
    check_csr_meta(fn, rowptr, col, val, e.device, n_rows=n)
    check_tensor(fn, "w1", w1, dtypes=(e.dtype,), ndim=2, device=e.device)
    check_tensor(fn, "w2", w2, dtypes=(e.dtype,), ndim=2, device=e.device)
    if w1.shape[0] != d_in:
        _fail(fn, "w1", f"must have shape (d_in={d_in}, d_out)", f"shape {tuple(w1.shape)}")
    if tuple(w2.shape) != tuple(w1.shape):
        _fail(fn, "w2", f"must have the shape of w1 {tuple(w1.shape)}", f"shape {tuple(w2.shape)}")
    if bias is not None:
        check_tensor(fn, "bias", bias, dtypes=(e.dtype,), ndim=1, device=e.device)
        if bias.shape[0] != w1.shape[1]:
            _fail(fn, "bias", f"must have shape (d_out={w1.shape[1]},)", f"shape {tuple(bias.shape)}")
    if not (isinstance(negative_slope, (int, float)) and negative_slope >= 0):
        _fail(fn, "negative_slope", "must be a number >= 0 (the backward reads the sign of the "
              "output)", negative_slope)
    check_transpose(fn, transpose, n, n, col.shape[0], e.device, values=values)
    if values:
        check_csr_values(fn, rowptr, col, n)
