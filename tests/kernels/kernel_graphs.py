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


def power_law_csr(n_rows, n_cols, *, exponent=1.2, max_deg=120, seed=0, index_dtype=torch.int64,
                  col_dtype=torch.int32, device="cpu"):
    """A random CSR with power-law row degrees (Zipf-like: many rows of degree 0-3, a few of
    up to ``max_deg``) and columns drawn with power-law popularity (some never used: isolated
    nodes), in random row order."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n_rows, generator=g)
    deg = torch.clamp((2.0 * u.pow(-1.0 / exponent) - 1.5).floor(), max=max_deg).to(torch.int64)
    rowptr = torch.zeros(n_rows + 1, dtype=torch.int64)
    rowptr[1:] = torch.cumsum(deg, 0)
    nnz = int(rowptr[-1])
    weights = torch.arange(1, n_cols + 1, dtype=torch.float64).pow(-1.0)
    weights[torch.randperm(n_cols, generator=g)[: n_cols // 5]] = 0.0  # isolated columns
    col = torch.multinomial(weights, nnz, replacement=True, generator=g) if nnz else \
        torch.zeros(0, dtype=torch.int64)
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
