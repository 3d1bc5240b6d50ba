"""Static kernel report: every Triton kernel in every configuration the dispatcher picks, compiled
for sm_90 and sm_80 without a GPU: registers, spills, smem, occupancy, SASS loops by instruction
class, warp-instructions per nonzero, an H200 roofline on Gowalla and a 10^6-node power-law graph
(tools/kernel_model.py), the issue-16 targets. A kernel change means editing KERNELS and OPS only.

    python -m tools.kernel_static --out DIR [--update-docs docs/KERNELS.md [--before REPORT]]

Writes DIR/report.json ({meta, assumptions, cases, ops}), DIR/summary.md, each case's PTX and SASS.
"""
from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch
import triton

from tools import kernel_model as M
from tools.kernel_tables import DOCS_BEGIN, DOCS_END, SUMS, docs_markdown, summary_markdown
from bench.measure import repo_path, write_section
from gnn.kernels import defaults, ngcf_triton, sddmm_triton, spmm_triton

DIMS, ARCHS = (16, 32, 64, 128, 256), (90, 80)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
GRAPHS = {"gowalla": "gowalla", "powerlaw_1e6": "powerlaw-N1000000"}  # bench.graphs labels
CACHE = Path(os.environ.get("GNN_KERNEL_STATIC_CACHE", Path.home() / ".cache" / "gnn-kernel-static"))
F32, I32, I64 = torch.float32, torch.int32, torch.int64


def cdiv(a, b):
    return -(-a // b)


class Launch(NamedTuple):  # what the host passes for (d, dtype): args (a torch dtype for a pointer)
    args: dict
    constexprs: dict
    num_warps: int
    num_stages: int = 3  # Triton's default: the host passes none
    maxnreg: Optional[int] = None


class Kernel(NamedTuple):
    """fn() -> the @triton.jit function; launch(d, dtype, graph) -> Launch, or why the dispatcher
    never runs it; work(graph, Launch, d, sass) -> dict(programs, loops: iterations of each SASS
    loop in address order, gathers: rows gathered, row_bytes, stream_bytes: read or written once
    (HBM), reread_bytes: read again (L2), lanes: (useful, total) lane-elements or None, useful_flops)."""
    fn: Callable
    launch: Callable
    work: Callable


def _T():  # the long-row threshold the dispatcher uses (read when called: tests may set it)
    return defaults.long_threshold


def _segments(g):
    """Lengths of the long rows' segments (as spmm_triton.Schedule cuts them), segments per row."""
    long = g.deg[g.deg > _T()]
    nseg = cdiv(long, _T())
    lengths = np.full(int(nseg.sum()), _T())
    lengths[np.cumsum(nseg) - 1] = long - (nseg - 1) * _T()
    return lengths, nseg


def _items(g, segments_only=False, fused=False):
    """Work-item lengths as spmm_triton.Schedule sorts them, longest first: rows <= T whole and
    T-segments of the longer rows (``fused``: the long rows last, with no nonzeros)."""
    short, seg = -np.sort(-g.deg[g.deg <= _T()]), _segments(g)[0]
    if fused:
        return np.concatenate([short, np.zeros(g.n - short.size, dtype=short.dtype)])
    return -np.sort(-(seg if segments_only else np.concatenate([short, seg])))


def _row_kernel(add=False, segments=False):
    """The SpMM row kernel over a graph's items: csr_spmm's (``add``: the NGCF backward's
    A^T dS + de_local, de_local fp32) or the fused forward's launch over the long rows' segments."""
    def launch(d, dt, g):
        rows, nt, chunk, nw = spmm_triton.spmm_config(d, dt.itemsize)
        y = F32 if segments else dt
        args = dict(start_ptr=I32, len_ptr=I32, out_ptr=I32, col_ptr=g.col_dtype, val_ptr=F32,
                    x_ptr=dt, add_ptr=F32 if add else y, y_ptr=y, part_ptr=F32,
                    n_items=_items(g, segments).size, d=d, stride_x=d, stride_add=d, stride_y=d)
        return Launch(args, dict(HAS_ADD=add, HAS_PART=segments or bool(g.deg.max() > _T()), ROWS=rows,
                                 NT=nt, CHUNK=chunk, EVEN_D=d % (nt * chunk) == 0, OFF64=False), nw)

    def work(g, L, d, sass):
        c, lens, n_seg, a = L.constexprs, _items(g, segments), _segments(g)[0].size, L.args
        nd, nnz = cdiv(d, c["NT"] * c["CHUNK"]), int(lens.sum())
        loops, longest = M.gather_loops(sass, lens, c["ROWS"], nd) or ([], 0)
        index = 12 * lens.size + 8 * nnz  # items (start, len, out), col and val: per d tile
        out = (lens.size - n_seg) * d * (a["y_ptr"].itemsize + 4 * add) + n_seg * d * 4
        return dict(programs=cdiv(lens.size, c["ROWS"]) * nd, loops=loops, gathers=nnz,
                    row_bytes=d * a["x_ptr"].itemsize, stream_bytes=index + out,
                    reread_bytes=(nd - 1) * index,
                    lanes=(nnz * d, longest * c["ROWS"] * c["NT"] * c["CHUNK"] * nd))
    return Kernel(lambda: spmm_triton._spmm_row_kernel, launch, work)


def _reduce(add, compact):
    def launch(d, dt, g):
        bd, nw = spmm_triton.reduce_config(d)
        args = dict(long_row_ptr=I64, seg_ptr_ptr=I64, part_ptr=F32, add_ptr=F32,
                    y_ptr=F32 if compact else dt, d=d, stride_add=d, stride_y=d)
        return Launch(args, dict(HAS_ADD=add, COMPACT=compact, BLOCK_D=bd), nw)

    def work(g, L, d, sass):  # ptxas unrolls the loop over segments: 4 a step, 2 straight, 1 a step
        nseg, nd = _segments(g)[1], cdiv(d, L.constexprs["BLOCK_D"])
        return dict(programs=nseg.size * nd, gathers=0, row_bytes=0, lanes=None,
                    loops=[int((nseg // 4).sum()) * nd, int((nseg % 4 % 2).sum()) * nd],
                    stream_bytes=d * (4 * nseg.sum()
                                      + nseg.size * (4 * add + L.args["y_ptr"].itemsize)))
    return Kernel(lambda: spmm_triton._spmm_segment_reduce_kernel, launch, work)


def _fused(kernel, part, args, flags, work):
    """A fused NGCF kernel (``part`` of ngcf_config) as launched for a CUDA tensor of dtype dt:
    d_in = d_out = d, bias, self-loop, S saved (the defaults); pointers in dt unless ``args``."""
    def launch(d, dt, g):
        if not ngcf_triton.fused_supported(d, d):
            return (f"not used: fused_supported({d}, {d}) is False "
                    f"(FUSED_MAX_DIM={ngcf_triton.FUSED_MAX_DIM})")
        e = SimpleNamespace(dtype=dt, device=torch.device("cuda"), element_size=lambda: dt.itemsize,
                            numel=lambda: g.n * d)  # what ngcf_config reads of e
        cfg = ngcf_triton.ngcf_config(e, d, d)
        ce = dict(cfg[part], PREC=cfg["PREC"], DOT_F32=False, SELF_LOOP=True, **flags(g))
        nw, maxnreg = ce.pop("num_warps"), ce.pop("maxnreg")
        a = {k: dt for k in getattr(ngcf_triton, kernel).arg_names if k.endswith("_ptr")}
        return Launch(dict(a, **args(g, ce), n=g.n, d_in=d, d_out=d, negative_slope=0.2), ce, nw,
                      maxnreg=maxnreg)
    return Kernel(lambda: getattr(ngcf_triton, kernel), launch, work)


def _fwd_work(g, L, d, sass):
    c, eb, lens = L.constexprs, L.args["e_ptr"].itemsize, _items(g, fused=True)
    k, nb, nnz = cdiv(d, c["CHUNK"]), cdiv(g.n, c["BLOCK_M"]), int(lens.sum())
    loops, longest = M.gather_loops(sass, lens, c["BLOCK_M"], k, [nb * k]) or ([], 0)
    # items, col + val (again per chunk from L2), e read, out and S written, S of the long rows
    streams = 12 * g.n + 8 * nnz + 3 * g.n * d * eb + int((g.deg > _T()).sum()) * d * 4
    return dict(programs=nb, loops=loops, gathers=nnz, row_bytes=d * eb, stream_bytes=streams,
                reread_bytes=(k - 1) * 8 * nnz + nb * 2 * d * d * eb,
                useful_flops=2 * g.nnz * d + 4 * g.n * d * d,
                lanes=(nnz * d, longest * c["BLOCK_M"] * c["CHUNK"] * k))


def _bwd_work(weights):
    def work(g, L, d, sass):
        c, eb, blocks = L.constexprs, L.args["e_ptr"].itemsize, cdiv(g.n, L.constexprs["BLOCK_M"])
        if not weights:  # grad, out, S, e read; dS (e's dtype), de_local (fp32) written; W per program
            return dict(programs=blocks, loops=[blocks * cdiv(d, c["CHUNK"])], gathers=0,
                        row_bytes=0, lanes=None, stream_bytes=g.n * d * (5 * eb + 4),
                        reread_bytes=blocks * 2 * d * d * eb, useful_flops=4 * g.n * d * d)
        nj, p = cdiv(d, c["BLOCK_N"]), min(blocks, 2 * M.H200["sms"])  # 2 programs per SM on CUDA
        # grad, out once; S, e once per column block; dW and db partials per program
        return dict(programs=p * nj, loops=[blocks * nj], gathers=0, row_bytes=0, lanes=None,
                    stream_bytes=g.n * d * eb * (2 + 2 * nj) + p * (2 * d * d + d) * 4,
                    useful_flops=4 * g.n * d * d)
    return work


def _sddmm():
    def launch(d, dt, g):
        be, bd, n_dt, nw = sddmm_triton.sddmm_config(d)
        args = dict(row_ptr=I32, col_ptr=g.col_dtype, a_ptr=dt, b_ptr=dt, out_ptr=F32, nnz=g.nnz, d=d,
                    stride_a=d, stride_b=d)
        return Launch(args, dict(N_DT=n_dt, BLOCK_E=be, BLOCK_D=bd), nw)

    def work(g, L, d, sass):  # no loop: the d tiles are unrolled; a[row] from HBM once, again from L2
        c, eb, progs = L.constexprs, L.args["a_ptr"].itemsize, cdiv(g.nnz, L.constexprs["BLOCK_E"])
        return dict(programs=progs, loops=[], gathers=g.nnz, row_bytes=d * eb,
                    stream_bytes=12 * g.nnz + g.n * d * eb, reread_bytes=g.nnz * d * eb,
                    lanes=(g.nnz * d, progs * c["BLOCK_E"] * c["BLOCK_D"] * c["N_DT"]))
    return Kernel(lambda: sddmm_triton._sddmm_kernel, launch, work)


KERNELS = {
    "spmm_row": _row_kernel(), "spmm_row_add": _row_kernel(add=True),
    "spmm_segment": _row_kernel(segments=True),
    "spmm_reduce": _reduce(add=False, compact=False),
    "spmm_reduce_compact": _reduce(add=False, compact=True),
    "spmm_reduce_add": _reduce(add=True, compact=False),
    "ngcf_fwd": _fused("_ngcf_fwd_kernel", "fwd", lambda g, ce: dict(
        start_ptr=I32, len_ptr=I32, row_ptr=I32, col_ptr=g.col_dtype, val_ptr=F32, s_long_ptr=F32,
        n_light=int((g.deg <= _T()).sum())), lambda g: dict(
            HAS_BIAS=True, SAVE_S=True, HAS_LONG=bool(g.deg.max() > _T())), _fwd_work),
    "ngcf_bwd_rows": _fused("_ngcf_bwd_rows_kernel", "rows", lambda g, ce: dict(de_ptr=F32),
                            lambda g: {}, _bwd_work(weights=False)),
    "ngcf_bwd_weights": _fused("_ngcf_bwd_weights_kernel", "weights", lambda g, ce: dict(
        dw1_ptr=F32, dw2_ptr=F32, db_ptr=F32, n_blocks=cdiv(g.n, ce["BLOCK_M"])), lambda g: {},
        _bwd_work(weights=True)),
    "sddmm": _sddmm(),
}
# the launches of each op (dtype None: the op's own); "torch:" = the composed layer's torch ops
# (whose SpMMs take float32: the composed path accumulates in it)
_SPMM = [("spmm_row", None), ("spmm_reduce", None)]
_ADD = [("spmm_row_add", None), ("spmm_reduce_add", None)]
OPS = {"csr_spmm": _SPMM, "csr_sddmm": [("sddmm", None)],
       "ngcf_fwd_fused": [("spmm_segment", None), ("spmm_reduce_compact", None), ("ngcf_fwd", None)],
       "ngcf_fwd_unfused": _SPMM + [("torch:forward", None)],
       "ngcf_bwd_fused": [("ngcf_bwd_rows", None), ("ngcf_bwd_weights", None)] + _ADD,
       "ngcf_bwd_unfused": [(k, "float32") for k, _ in _ADD] + [("torch:backward", None)]}

# ----------------------------------------------------------------------------- the report


def graph_of(name: str, deg, rowptr_dtype=I64, col_dtype=I32) -> SimpleNamespace:
    deg = np.asarray(deg, dtype=np.int64)
    return SimpleNamespace(name=name, n=deg.size, nnz=int(deg.sum()), deg=deg,
                           rowptr_dtype=rowptr_dtype, col_dtype=col_dtype)


def load_graph(name: str, label: str, cache: Path) -> SimpleNamespace:
    """Row degrees and index dtypes of bench.graphs' training adjacency ``label``, cached."""
    path = cache / f"{label}.npz"
    if not path.exists():
        from bench.graphs import host_graph

        adj = host_graph(label)
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, deg=np.diff(adj.rowptr.numpy()), rowptr=str(adj.rowptr.dtype)[6:],
                 col=str(adj.col.dtype)[6:])
    z = np.load(path)
    return graph_of(name, z["deg"], getattr(torch, str(z["rowptr"])), getattr(torch, str(z["col"])))


_CTX: dict = {}  # set before the pool forks: "graph" (whose sizes the scalars take), "cache"


def _compile_job(job):
    name, dtype, d, arch = job
    L = KERNELS[name].launch(d, DTYPES[dtype], _CTX["graph"])
    case = dict(kernel=name, dtype=dtype, d=d, arch=arch, status=L if isinstance(L, str) else "ok")
    if isinstance(L, str):
        return case
    try:
        c = M.compile_case(KERNELS[name].fn(), *L, arch)
        info, sass = M.analyse(c.asm["ptx"], c.asm["cubin"], arch, _CTX["cache"])
    except Exception as exc:  # noqa: BLE001 - one failed case must not end the report
        return dict(case, status=f"error: {type(exc).__name__}: {str(exc)[:300]}")
    shared = c.metadata.shared + info.pop("static_shared_bytes")
    return dict(case, num_warps=L.num_warps, num_stages=L.num_stages, maxnreg=L.maxnreg,
                constexprs=L.constexprs, **info, shared_bytes=shared, sass=M.sass_loops(sass),
                occupancy=M.occupancy(info["registers"], shared, L.num_warps, arch),
                ptx_text=c.asm["ptx"], sass_text=sass)


def compose_ops(cases: list, graphs: dict) -> list:
    """Each op of OPS on sm_90, per graph: its launches and the sums of their SUMS (estimate and
    serial None where a launch is missing, e.g. a fused kernel above FUSED_MAX_DIM)."""
    by, rows = {(c["kernel"], c["dtype"], c["d"]): c for c in cases if c["arch"] == 90}, []
    for (op, parts), dt, d in itertools.product(OPS.items(), DTYPES, sorted({c["d"] for c in cases})):
        rows.append(dict(op=op, dtype=dt, d=d, launches=[[k, kdt or dt] for k, kdt in parts]))
        for gname, g in graphs.items():
            t = M.unfused_ngcf_torch_us(g.n, d, DTYPES[dt].itemsize)
            got = [dict(estimate_us=t[k[6:]], serial_us=t[k[6:]]) if k.startswith("torch:") else
                   by.get((k, kdt or dt, d), {}).get(gname, {}) for k, kdt in parts]
            for key in SUMS:
                vals = [x.get(key, None if key in SUMS[:2] else 0.0) for x in got]
                rows[-1][f"{key}_{gname}"] = None if None in vals else sum(vals)
    return rows


def run(out, dims, dtypes, archs, kernels, jobs: int, cache: Path, graphs=None, cases=None) -> dict:
    """Compile (or take ``cases`` of an earlier report), evaluate the sm_90 cases on ``graphs``
    (default GRAPHS), compose the ops; with ``out``, write the report there."""
    graphs = graphs or {name: load_graph(name, label, cache) for name, label in GRAPHS.items()}
    _CTX.update(graph=next(iter(graphs.values())), cache=cache)
    if cases is None:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            cases = pool.map(_compile_job, itertools.product(kernels, dtypes, dims, archs), chunksize=1)
    for case in (c for c in cases if c["status"] == "ok"):
        for ext in ("ptx", "sass"):
            if (text := case.pop(f"{ext}_text", None)) and out:
                Path(out).mkdir(parents=True, exist_ok=True)
                stem = f"{case['kernel']}-{case['dtype']}-d{case['d']}-sm{case['arch']}"
                (Path(out) / f"{stem}.{ext}").write_text(text)
        if case["arch"] == 90:  # the roofline is the H200's
            L = KERNELS[case["kernel"]].launch(case["d"], DTYPES[case["dtype"]], _CTX["graph"])
            for gname, g in graphs.items():
                w = KERNELS[case["kernel"]].work(g, L, case["d"], case["sass"])
                case[gname] = M.evaluate(case["sass"], w, L.num_warps, g)
            gw = case[next(iter(graphs))]
            keys = ("warp_instructions_per_nnz", "useful_lane_fraction", "bound")
            case.update({k: gw.get(k) for k in keys},
                        **{f"estimate_us_{k}": case[k].get("estimate_us") for k in graphs})
    git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True).stdout.strip()  # noqa: E731
    dirty = " + uncommitted kernels/ changes" if git("status", "--porcelain", "kernels") else ""
    meta = dict(command="python -m tools.kernel_static", triton=triton.__version__, hardware=M.H200,
                commit=git("rev-parse", "--short", "HEAD") + dirty,
                graphs={k: dict(label=GRAPHS.get(k, k), n=g.n, nnz=g.nnz, max_degree=int(g.deg.max()),
                                median_degree=float(np.median(g.deg))) for k, g in graphs.items()})
    report = dict(meta=meta, assumptions=M.ASSUMPTIONS, cases=cases, ops=compose_ops(cases, graphs))
    if out:
        (Path(out) / "report.json").write_text(json.dumps(report, indent=1, default=float))
        (Path(out) / "summary.md").write_text(summary_markdown(report))
    return report


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--update-docs", type=Path, help="markdown file to write the tables into")
    p.add_argument("--before", type=Path, default=Path("results/kernel_static/before/report.json"))
    p.add_argument("--dims", type=int, nargs="+", default=DIMS)
    p.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    p.add_argument("--archs", type=int, nargs="+", default=ARCHS, choices=ARCHS)
    p.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=list(KERNELS))
    p.add_argument("--jobs", type=int, default=os.cpu_count())
    p.add_argument("--cache", type=Path, default=CACHE, help="ptxas/cuobjdump results, degrees")
    a = p.parse_args(argv)
    report = run(a.out, a.dims, a.dtypes, a.archs, a.kernels, a.jobs, a.cache)
    if a.update_docs:
        tables = "\n".join(docs_markdown(report, json.loads(a.before.read_text())))
        write_section(a.update_docs, DOCS_BEGIN, DOCS_END, tables,
                      [repo_path(a.out / "report.json"), repo_path(a.before)])
    bad = sum(c["status"].startswith("error") for c in report["cases"])
    print(f"{len(report['cases'])} cases ({bad} failed to compile): {a.out}/report.json, summary.md")


if __name__ == "__main__":
    main()
