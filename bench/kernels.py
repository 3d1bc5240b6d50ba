"""Kernel benchmarks for scripts/gpu_check.sh: SpMM and the fused NGCF layer, ours vs torch.

Graphs: Gowalla's symmetric normalised adjacency (train.txt from $GNN_DATA or ../shared/data,
built here with numpy so this script depends on gnn.kernels only) and a seeded synthetic
power-law graph (N = 1e6, nnz = 5e7 by default). d = 64. Times are triton.testing.do_bench
medians (ms). Bytes model (DESIGN.md §4): 4(N+1) + nnz(4+4) + G + N d b with N d b <= G <= nnz d b;
"floor" uses G = N d b (each x row read once) and the measured device-to-device copy bandwidth.

    python scripts/kernel_bench.py --out results/gpu/H100-2026-01-01.md
    python scripts/kernel_bench.py --device cpu --smoke      # syntax/plumbing check, no GPU
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]


def log(*a):
    print(*a, flush=True)


# ----------------------------------------------------------------------------- graphs

def gowalla_csr(path: Path, device):
    users, items = [], []
    with open(path) as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 2:
                continue
            ids = np.asarray(parts, dtype=np.int64)
            users.append(np.full(len(ids) - 1, ids[0]))
            items.append(ids[1:])
    u, i = np.concatenate(users), np.concatenate(items)
    n_u, n_i = int(u.max()) + 1, int(i.max()) + 1
    n = n_u + n_i
    key = np.unique(u * n_i + i)
    u, i = key // n_i, key % n_i
    rows = np.concatenate([u, n_u + i])
    cols = np.concatenate([n_u + i, u])
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    deg = np.bincount(rows, minlength=n).astype(np.float64)
    dinv = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1)), 0.0)
    val = (dinv[rows] * dinv[cols]).astype(np.float32)
    rowptr = np.zeros(n + 1, dtype=np.int64)
    rowptr[1:] = np.cumsum(np.bincount(rows, minlength=n))
    t = lambda a, dt: torch.from_numpy(a).to(dt).to(device)  # noqa: E731
    return t(rowptr, torch.int64), t(cols, torch.int32), t(val, torch.float32), n


def powerlaw_csr(n: int, nnz: int, device, alpha=1.2, seed=0):
    """Row degrees ~ Zipf(alpha) scaled to nnz (a few hub rows); columns drawn with a power-law
    popularity (inverse-transform sampling). Not symmetric: the backward uses a transpose."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    w = (torch.arange(1, n + 1, dtype=torch.float64) ** -alpha)
    w = w[torch.randperm(n, generator=g)]
    deg = torch.floor(w / w.sum() * nnz).to(torch.int64)
    deg += torch.multinomial(w, nnz - int(deg.sum()), replacement=True, generator=g).bincount(minlength=n)
    rowptr = torch.zeros(n + 1, dtype=torch.int64)
    rowptr[1:] = torch.cumsum(deg, 0)
    gd = torch.Generator(device=device).manual_seed(seed)
    u = torch.rand(nnz, generator=gd, device=device)
    col = torch.clamp((n * u ** 3).to(torch.int64), max=n - 1)  # skewed popularity
    perm = torch.randperm(n, generator=gd, device=device)
    col = perm[col].to(torch.int32)
    # sort columns inside rows (CSR convention, better locality)
    row = torch.repeat_interleave(torch.arange(n, device=device), deg.to(device), output_size=nnz)
    col = col[torch.argsort(row * n + col.to(torch.int64))]
    val = torch.rand(nnz, generator=gd, device=device) / 64
    return rowptr.to(device), col, val, n


# ----------------------------------------------------------------------------- timing

def bench(fn, device, smoke):
    if device.type == "cuda":
        import triton.testing

        return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))
    fn()
    reps = 2 if smoke else 10
    t = []
    for _ in range(reps):
        s = time.perf_counter(); fn(); t.append(time.perf_counter() - s)
    return float(np.median(t) * 1e3)


def peak_mem(fn, device):
    if device.type != "cuda":
        return float("nan")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def copy_bandwidth(device):
    if device.type != "cuda":
        return float("nan")
    a = torch.empty(2**28, dtype=torch.float32, device=device)  # 1 GiB
    b = torch.empty_like(a)
    ms = bench(lambda: b.copy_(a), device, False)
    return 2 * a.numel() * 4 / (ms * 1e-3) / 1e9


# ----------------------------------------------------------------------------- cases

def torch_csr(rowptr, col, val, n_cols):
    return torch.sparse_csr_tensor(rowptr.to(torch.int32), col, val, (rowptr.numel() - 1, n_cols))


def spmm_rows(name, rowptr, col, val, n, d, device, smoke, bw, rows):
    import gnn.kernels as K

    tr = K.csr_transpose(rowptr, col, n)
    sym = name.startswith("gowalla")
    a = torch_csr(rowptr, col, val, n)
    nnz = col.numel()
    for dtype in (torch.float32, torch.bfloat16):
        b = torch.tensor([], dtype=dtype).element_size()
        x = torch.randn(n, d, device=device, dtype=dtype)
        ours = bench(lambda: K.csr_spmm(rowptr, col, val, x), device, smoke)
        bytes_min = 4 * (n + 1) + nnz * 8 + n * d * b + n * d * b
        bytes_max = 4 * (n + 1) + nnz * 8 + nnz * d * b + n * d * b
        floor_ms = bytes_min / (bw * 1e9) * 1e3 if bw == bw else float("nan")
        row = dict(case=f"spmm fwd {name} {str(dtype)[6:]}", ours=ours,
                   gbs_min=bytes_min / (ours * 1e-3) / 1e9, gbs_max=bytes_max / (ours * 1e-3) / 1e9,
                   floor_pct=100 * floor_ms / ours)
        if dtype == torch.float32:
            row["torch"] = bench(lambda: a @ x, device, smoke)
        else:
            yb = K.csr_spmm(rowptr, col, val, x).float()
            ref = a @ x.float()  # same bf16-rounded inputs, fp32 math
            row["rel_err"] = float((yb - ref).norm() / ref.norm())
            row["note"] = f"bf16/fp32 throughput {rows[-1]['ours'] / ours:.2f}x"
        rows.append(row)
        log(row)
    # forward + backward (A^T via the same CSR if symmetric, else the given transpose)
    x = torch.randn(n, d, device=device, requires_grad=True)
    g = torch.randn(n, d, device=device)
    kw = dict(symmetric=True) if sym else dict(transpose=tr)
    ours = bench(lambda: K.csr_spmm(rowptr, col, val, x, **kw).backward(g), device, smoke)
    theirs = bench(lambda: torch.sparse.mm(a, x).backward(g), device, smoke)
    rows.append(dict(case=f"spmm fwd+bwd {name} fp32", ours=ours, torch=theirs))
    log(rows[-1])


def threshold_sweep(name, rowptr, col, val, n, d, device, smoke, rows):
    import gnn.kernels as K

    x = torch.randn(n, d, device=device)
    for thr in (256, 1024, 4096, 1 << 30):
        os.environ["GNN_SPMM_LONG_THRESHOLD"] = str(thr)
        ms = bench(lambda: K.csr_spmm(rowptr, col, val, x), device, smoke)
        rows.append(dict(case=f"spmm fwd {name} fp32, long-row T={thr if thr < 1 << 30 else 'off'}",
                         ours=ms))
        log(rows[-1])
    os.environ.pop("GNN_SPMM_LONG_THRESHOLD", None)


def ngcf_rows(name, rowptr, col, val, n, d, device, smoke, rows):
    import gnn.kernels as K

    sym = name.startswith("gowalla")
    tr = None if sym else K.csr_transpose(rowptr, col, n)
    a = torch_csr(rowptr, col, val, n)
    e = (torch.randn(n, d, device=device) * 0.1).requires_grad_()
    w1 = (torch.randn(d, d, device=device) / d ** 0.5).requires_grad_()
    w2 = (torch.randn(d, d, device=device) / d ** 0.5).requires_grad_()
    b = torch.zeros(d, device=device, requires_grad=True)
    g = torch.randn(n, d, device=device)

    def ours():
        K.ngcf_layer(rowptr, col, val, e, w1, w2, b, symmetric=sym, transpose=tr).backward(g)

    def unfused():
        s = torch.sparse.mm(a, e)
        F.leaky_relu((s + e) @ w1 + (s * e) @ w2 + b, 0.2).backward(g)

    res = {}
    for label, fn, env in (("ours, S saved", ours, "0"), ("ours, S recomputed", ours, "1"),
                           ("torch unfused", unfused, "0")):
        os.environ["GNN_NGCF_RECOMPUTE_S"] = env
        res[label] = (bench(fn, device, smoke), peak_mem(fn, device))
    os.environ.pop("GNN_NGCF_RECOMPUTE_S", None)
    t_ms, t_mb = res["torch unfused"]
    for label in ("ours, S saved", "ours, S recomputed"):
        ms, mb = res[label]
        rows.append(dict(case=f"ngcf_layer fwd+bwd {name} fp32 ({label})", ours=ms, torch=t_ms,
                         peak_mb=mb, torch_peak_mb=t_mb))
        log(rows[-1])


def fmt(v, spec):
    if v is None or (isinstance(v, float) and v != v):
        return ""
    return format(v, spec)


def table(rows):
    head = ("| case | ours ms | torch ms | speedup | GB/s (G=N d b .. nnz d b) | % of floor | "
            "peak MiB ours / torch | note |")
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        sp = r["torch"] / r["ours"] if r.get("torch") else None
        gbs = (f"{r['gbs_min']:.0f} .. {r['gbs_max']:.0f}" if "gbs_min" in r else "")
        mem = (f"{fmt(r['peak_mb'], '.0f')} / {fmt(r['torch_peak_mb'], '.0f')}" if "peak_mb" in r else "")
        note = r.get("note", "")
        if "rel_err" in r:
            note = (note + f"; rel err vs fp32 math {r['rel_err']:.1e}").strip("; ")
        lines.append(f"| {r['case']} | {r['ours']:.3f} | {fmt(r.get('torch'), '.3f')} | "
                     f"{fmt(sp, '.2f')} | {gbs} | {fmt(r.get('floor_pct'), '.0f')} | {mem} | {note} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", default=None, help="markdown results file")
    p.add_argument("--smoke", action="store_true", help="tiny sizes (plumbing check)")
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--nnz", type=int, default=50_000_000)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    sys.path.insert(0, str(ROOT))
    if args.smoke:
        args.n, args.nnz = 3000, 60000
    rows = []
    bw = copy_bandwidth(device)
    log(f"device copy bandwidth: {bw:.0f} GB/s")
    data = Path(os.environ.get("GNN_DATA", ROOT.parent / "shared" / "data")) / "gowalla" / "train.txt"
    graphs = []
    if data.exists() and not args.smoke:
        t0 = time.time()
        graphs.append(("gowalla",) + gowalla_csr(data, device))
        log(f"gowalla: N={graphs[-1][4]} nnz={graphs[-1][2].numel()} ({time.time() - t0:.1f} s)")
    else:
        log(f"gowalla skipped ({'smoke' if args.smoke else f'not found: {data}'})")
    t0 = time.time()
    graphs.append(("powerlaw",) + powerlaw_csr(args.n, args.nnz, device))
    log(f"powerlaw: N={args.n} nnz={args.nnz} max deg="
        f"{int(torch.diff(graphs[-1][1]).max())} ({time.time() - t0:.1f} s)")
    for name, rowptr, col, val, n in graphs:
        spmm_rows(name, rowptr, col, val, n, args.d, device, args.smoke, bw, rows)
        ngcf_rows(name, rowptr, col, val, n, args.d, device, args.smoke, rows)
    name, rowptr, col, val, n = graphs[-1]
    threshold_sweep(name, rowptr, col, val, n, args.d, device, args.smoke, rows)

    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    import triton

    header = (f"# Kernel benchmarks: {dev_name}, {datetime.date.today()}\n\n"
              f"torch {torch.__version__}, triton {triton.__version__}, d = {args.d}, "
              f"measured copy bandwidth {bw:.0f} GB/s. Times: do_bench medians (ms); "
              f"'% of floor' = (bytes with G = N d b) / copy bandwidth / time.\n"
              f"Targets: SpMM >= 1.2x torch and >= 60% of floor; ngcf_layer fwd+bwd >= 2x the "
              f"unfused torch composition with <= half its peak memory; bf16 >= 1.6x fp32 SpMM "
              f"with rel err < 1e-2.\n\n")
    text = header + table(rows) + "\n"
    print("\n" + text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
