"""Small random CSR graphs for the kernel tests (plain torch, seeded)."""
from __future__ import annotations

import torch


def random_csr(n_rows, n_cols, *, avg_deg=3.0, empty_frac=0.2, long_row=None, seed=0,
               index_dtype=torch.int64, col_dtype=torch.int32, device="cpu"):
    """A random (n_rows x n_cols) CSR with some empty rows and optionally one long row.

    Duplicate columns inside a row are allowed (CSR allows them; they must simply add up).
    """
    g = torch.Generator().manual_seed(seed)
    deg = torch.poisson(torch.full((n_rows,), float(avg_deg)), generator=g).to(torch.int64)
    deg[torch.rand(n_rows, generator=g) < empty_frac] = 0
    if long_row is not None and n_rows:
        deg[min(n_rows - 1, n_rows // 2)] = long_row
    rowptr = torch.zeros(n_rows + 1, dtype=torch.int64)
    rowptr[1:] = torch.cumsum(deg, 0)
    nnz = int(rowptr[-1])
    col = torch.randint(0, max(n_cols, 1), (nnz,), generator=g) if n_cols else torch.zeros(0, dtype=torch.int64)
    val = torch.rand(nnz, generator=g) + 0.1
    return (rowptr.to(index_dtype).to(device), col.to(col_dtype).to(device), val.to(device))


def sym_norm_csr(n, *, avg_deg=3.0, seed=0, index_dtype=torch.int64, col_dtype=torch.int32,
                 device="cpu"):
    """Symmetric normalised adjacency D^-1/2 A D^-1/2 of a random undirected graph."""
    g = torch.Generator().manual_seed(seed)
    m = int(n * avg_deg / 2)
    a, b = torch.randint(0, n, (m,), generator=g), torch.randint(0, n, (m,), generator=g)
    keep = a != b
    r = torch.cat([a[keep], b[keep]]); c = torch.cat([b[keep], a[keep]])
    key = torch.unique(r * n + c)
    r, c = key // n, key % n
    deg = torch.bincount(r, minlength=n).double()
    dinv = torch.where(deg > 0, deg.rsqrt(), torch.zeros_like(deg))
    val = (dinv[r] * dinv[c]).float()
    rowptr = torch.zeros(n + 1, dtype=torch.int64)
    rowptr[1:] = torch.cumsum(torch.bincount(r, minlength=n), 0)
    return rowptr.to(index_dtype).to(device), c.to(col_dtype).to(device), val.to(device)


def dense_of(rowptr, col, val, n_cols):
    """Dense float64 matrix of a (small) CSR: the independent oracle of the tests."""
    n_rows = rowptr.numel() - 1
    row = torch.repeat_interleave(torch.arange(n_rows), torch.diff(rowptr.cpu().long()))
    a = torch.zeros(n_rows, n_cols, dtype=torch.float64)
    a.index_put_((row, col.cpu().long()), val.cpu().double(), accumulate=True)
    return a


def close(actual, expected, tol, what=""):
    """max |a - e| <= tol * max(1, max |e|): one scale for the whole tensor."""
    actual = actual.detach().double().cpu()
    expected = expected.detach().double().cpu()
    assert actual.shape == expected.shape, what
    assert torch.isfinite(actual).all(), f"{what}: non-finite values"
    err = (actual - expected).abs().max().item() if actual.numel() else 0.0
    scale = max(1.0, expected.abs().max().item() if expected.numel() else 0.0)
    assert err <= tol * scale, f"{what}: max abs err {err:.3g} > {tol:.1g} * {scale:.3g}"
