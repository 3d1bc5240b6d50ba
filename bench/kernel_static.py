"""Static kernel report: every Triton kernel in every configuration the dispatcher can pick,
compiled for sm_90 and sm_80 without a GPU: registers, spills, shared memory, occupancy, SASS
loop bodies by instruction class, warp-instructions per nonzero and a roofline estimate on
Gowalla and a 10^6-node power-law graph (how: bench/kernel_model.py, with its assumptions).

    python -m bench.kernel_static --out DIR [--update-docs docs/KERNELS.md]

Writes DIR/report.json ({meta, assumptions, cases, ops}), DIR/summary.md and each case's PTX
and SASS (DIR/<case>.ptx, .sass). Triton caches the compiles (~/.triton/cache), ``--cache``
the graphs' degrees. To follow a kernel change, edit ``KERNELS`` and ``OPS`` only.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import itertools
import json
import multiprocessing
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, NamedTuple

import numpy as np
import torch
import triton

from bench import kernel_model as M

DIMS, ARCHS = (16, 32, 64, 128, 256), (90, 80)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
GRAPHS = {"gowalla": "gowalla", "powerlaw_1e6": "powerlaw-N1000000"}  # bench.graphs labels
F32, I64 = torch.float32, torch.int64
DOCS_BEGIN, DOCS_END = "<!-- kernel_static:begin -->", "<!-- kernel_static:end -->"


def _mod(name):  # a module of gnn.kernels, by its current name
    return importlib.import_module(f"gnn.kernels.{name}")


def cdiv(a, b):
    return -(-a // b)


class Launch(NamedTuple):
    """What the host passes for (d, dtype): every run-time argument (a torch dtype for a
    pointer, a value the runtime would see for a scalar), the constexprs, warps and stages."""
    args: dict
    constexprs: dict
    num_warps: int
    num_stages: int = 3  # Triton's default: the host passes none


class Kernel(NamedTuple):
    fn: Callable      # () -> the @triton.jit function
    launch: Callable  # (d, dtype, graph) -> Launch, or a str saying why the dispatcher never runs it
    work: Callable    # (graph, Launch, d) -> dict(programs, loops: total iterations of each SASS
    #                    loop in address order, gathers: rows gathered, row_bytes, stream_bytes:
    #                    read or written once (HBM), reread_bytes: read again (L2), lanes:
    #                    (useful, total) gather lane-elements or None, useful_flops if MMAs)


def _T():  # the long-row threshold the dispatcher uses
    return _mod("defaults").long_threshold


def _segments(g):
    """Lengths of the long rows' segments (as spmm_triton.LongRows cuts them), segments per row."""
    long = g.deg[g.deg > _T()]
    nseg = cdiv(long, _T())
    lengths = np.full(int(nseg.sum()), _T())
    lengths[np.cumsum(nseg) - 1] = long - (nseg - 1) * _T()
    return lengths, nseg


def _csr(g):
    return dict(rowptr_ptr=g.rowptr_dtype, col_ptr=g.col_dtype, val_ptr=F32)


def _items(g, segments_only=False):
    """Work-item lengths as spmm_triton.Schedule sorts them (rows <= T whole, T-segments of
    the longer rows), longest first."""
    seg = _segments(g)[0]
    return -np.sort(-(seg if segments_only else np.concatenate([g.deg[g.deg <= _T()], seg])))


def _blocks(lengths, rows):
    """Per program of ``rows`` consecutive items: (longest, shortest) item."""
    first = np.arange(0, lengths.size, rows)
    return lengths[first], lengths[np.minimum(first + rows, lengths.size) - 1]


def _row_kernel(add=False, segments=False):
    """The SpMM row kernel over a graph's items: csr_spmm's (``add``: the NGCF backward's
    A^T dS + de_local, dS fp32) or the fused forward's launch over the long rows' segments."""
    def launch(d, dt, g):
        rows, nt, chunk, nw = _mod("spmm_triton").spmm_config(d, (F32 if add else dt).itemsize)
        y = F32 if segments else dt
        args = dict(start_ptr=torch.int32, len_ptr=torch.int32, out_ptr=torch.int32,
                    col_ptr=g.col_dtype, val_ptr=F32, x_ptr=F32 if add else dt,
                    add_ptr=F32 if add else y, y_ptr=y, part_ptr=F32, n_items=_items(g, segments).size,
                    d=d, stride_x=d, stride_add=d, stride_y=d)
        flags = dict(HAS_ADD=add, HAS_PART=segments or bool(g.deg.max() > _T()))
        return Launch(args, dict(flags, ROWS=rows, NT=nt, CHUNK=chunk,
                                 EVEN_D=d % (nt * chunk) == 0, OFF64=False), nw)

    def work(g, L, d):
        c, lens = L.constexprs, _items(g, segments)
        longest, shortest = _blocks(lens, c["ROWS"])
        nd, xb, nnz = cdiv(d, c["NT"] * c["CHUNK"]), L.args["x_ptr"].itemsize, int(lens.sum())
        n_seg = _segments(g)[0].size
        index = 12 * lens.size + 8 * nnz  # items (start, len, out), col and val: per d tile
        out = (lens.size - n_seg) * d * (L.args["y_ptr"].itemsize + 4 * add) + n_seg * d * 4
        return dict(programs=longest.size * nd, gathers=nnz, row_bytes=d * xb,
                    loops=[int(shortest.sum()) * nd, int((longest - shortest).sum()) * nd],
                    stream_bytes=index + out, reread_bytes=(nd - 1) * index,
                    lanes=(nnz * d, int(longest.sum()) * c["ROWS"] * c["NT"] * c["CHUNK"] * nd))
    return Kernel(lambda: _mod("spmm_triton")._spmm_row_kernel, launch, work)


def _reduce(add, compact):
    def launch(d, dt, g):
        bd, nw = _mod("spmm_triton").reduce_config(d)
        args = dict(long_row_ptr=I64, seg_ptr_ptr=I64, part_ptr=F32, add_ptr=F32,
                    y_ptr=F32 if compact else dt, d=d, stride_add=d, stride_y=d)
        return Launch(args, dict(HAS_ADD=add, COMPACT=compact, BLOCK_D=bd), nw)

    def work(g, L, d):
        nseg, nd = _segments(g)[1], cdiv(d, L.constexprs["BLOCK_D"])
        # ptxas unrolls the loop over segments: 4 a step, then 2 (straight code), then 1 a step
        return dict(programs=nseg.size * nd, gathers=0, row_bytes=0, lanes=None,
                    loops=[int((nseg // 4).sum()) * nd, int((nseg % 4 % 2).sum()) * nd],
                    stream_bytes=d * (4 * nseg.sum() + nseg.size * (4 * add + L.args["y_ptr"].itemsize)))
    return Kernel(lambda: _mod("spmm_triton")._spmm_segment_reduce_kernel, launch, work)


def _ngcf(kernel, args, flags, work):
    """A fused NGCF kernel: its Launch from ngcf_config for a CUDA tensor of dtype dt."""
    def launch(d, dt, g):
        ng = _mod("ngcf_triton")
        if not ng.fused_supported(d, d):
            return f"not used: fused_supported({d}, {d}) is False (FUSED_MAX_DIM={ng.FUSED_MAX_DIM})"
        cfg = ng.ngcf_config(SimpleNamespace(dtype=dt, device=torch.device("cuda")), d, d)
        ce = {k: v for k, v in cfg.items() if k in getattr(ng, kernel).arg_names}
        common = dict(_csr(g), n=g.n, d_in=d, d_out=d, long_threshold=_T(), negative_slope=0.2)
        return Launch(dict(common, **args(dt, g, cfg)), dict(ce, **flags(g)), cfg["num_warps"])
    return Kernel(lambda: getattr(_mod("ngcf_triton"), kernel), launch, work)


def _fwd_work(g, L, d):
    c, eb = L.constexprs, L.args["e_ptr"].itemsize
    deg = np.where((g.deg > _T()) & c["HAS_LONG"], 0, g.deg)
    chunks = cdiv(np.add.reduceat(deg, np.arange(0, g.n, c["BLOCK_M"])), c["BLOCK_K"])
    nb = chunks.size
    # rowptr, col + val, e read, out and S written, S of the long rows; W1 + W2 per program
    streams = 16 * g.n + 8 * deg.sum() + 3 * g.n * d * eb + int((g.deg > _T()).sum()) * d * 4
    return dict(programs=nb, loops=[int(chunks.sum()), nb * cdiv(d, c["BLOCK_N"])],
                gathers=deg.sum(), row_bytes=d * eb, stream_bytes=streams,
                reread_bytes=nb * 2 * d * d * eb, useful_flops=2 * g.nnz * d + 4 * g.n * d * d,
                lanes=(deg.sum() * d, int(chunks.sum()) * c["BLOCK_K"] * c["BLOCK_DIN"]))


def _bwd_work(g, L, d):
    eb, blocks = L.args["e_ptr"].itemsize, cdiv(g.n, L.constexprs["BLOCK_M"])
    p = min(blocks, 2 * M.H200["sms"])  # ngcf_triton._n_programs on CUDA (2 per SM)
    # grad, out, S, e read; dS, de_local written (fp32); W1 + W2 and dW partials per program
    streams = g.n * d * (4 * eb + 8) + p * (2 * d * d + d) * 4
    return dict(programs=p, loops=[blocks], gathers=0, row_bytes=0, stream_bytes=streams,
                reread_bytes=p * 2 * d * d * eb, lanes=None, useful_flops=8 * g.n * d * d)


def _sddmm_launch(d, dt, g):
    be, bd, n_dt, nw = _mod("sddmm_triton").sddmm_config(d)
    args = dict(row_ptr=torch.int32, col_ptr=g.col_dtype, a_ptr=dt, b_ptr=dt, out_ptr=F32,
                nnz=g.nnz, d=d, stride_a=d, stride_b=d)
    return Launch(args, dict(N_DT=n_dt, BLOCK_E=be, BLOCK_D=bd), nw)


def _sddmm_work(g, L, d):
    c, eb = L.constexprs, L.args["a_ptr"].itemsize
    progs = cdiv(g.nnz, c["BLOCK_E"])  # no loop: the d tiles are unrolled (tl.static_range)
    # row, col read and out written per entry; a[row] read once from HBM, again from L2
    return dict(programs=progs, loops=[], gathers=g.nnz, row_bytes=d * eb,
                stream_bytes=12 * g.nnz + g.n * d * eb, reread_bytes=g.nnz * d * eb,
                lanes=(g.nnz * d, progs * c["BLOCK_E"] * c["BLOCK_D"] * c["N_DT"]))


KERNELS = {
    "spmm_row": _row_kernel(),
    "spmm_row_add": _row_kernel(add=True),
    "spmm_segment": _row_kernel(segments=True),
    "spmm_reduce": _reduce(add=False, compact=False),
    "spmm_reduce_compact": _reduce(add=False, compact=True),
    "spmm_reduce_add": _reduce(add=True, compact=False),
    "ngcf_fwd": _ngcf("_ngcf_fwd_kernel", lambda dt, g, cfg: dict(  # S saved, bias, self-loop
        e_ptr=dt, w1_ptr=dt, w2_ptr=dt, b_ptr=dt, s_long_ptr=F32, long_pos_ptr=torch.int32,
        out_ptr=dt, s_ptr=dt), lambda g: dict(HAS_BIAS=True, SELF_LOOP=True, SAVE_S=True,
                                               HAS_LONG=bool(g.deg.max() > _T())), _fwd_work),
    "ngcf_bwd": _ngcf("_ngcf_bwd_kernel", lambda dt, g, cfg: dict(  # S saved (the default)
        grad_ptr=dt, out_ptr=dt, s_ptr=dt, e_ptr=dt, w1_ptr=dt, w2_ptr=dt, s_long_ptr=dt,
        long_pos_ptr=g.rowptr_dtype, ds_ptr=F32, de_ptr=F32, dw1_ptr=F32, dw2_ptr=F32, db_ptr=F32,
        n_blocks=cdiv(g.n, cfg["BLOCK_M"])), lambda g: dict(SELF_LOOP=True, RECOMPUTE=False,
                                                            HAS_LONG=False), _bwd_work),
    "sddmm": Kernel(lambda: _mod("sddmm_triton")._sddmm_kernel, _sddmm_launch, _sddmm_work),
}
# the launches of each op (dtype None: the op's own); "torch:" = the composed layer's torch ops
_SPMM = [("spmm_row", None), ("spmm_reduce", None)]
_SPMM_ADD = [("spmm_row_add", None), ("spmm_reduce_add", None)]
OPS = {"csr_spmm": _SPMM, "csr_sddmm": [("sddmm", None)],
       "ngcf_fwd_fused": [("spmm_segment", None), ("spmm_reduce_compact", None), ("ngcf_fwd", None)],
       "ngcf_fwd_unfused": _SPMM + [("torch:forward", None)],
       "ngcf_bwd_fused": [("ngcf_bwd", None)] + _SPMM_ADD,
       "ngcf_bwd_unfused": _SPMM_ADD + [("torch:backward", None)]}


# ----------------------------------------------------------------------------- the report


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
    return SimpleNamespace(name=name, n=z["deg"].size, nnz=int(z["deg"].sum()), deg=z["deg"],
                           rowptr_dtype=getattr(torch, str(z["rowptr"])),
                           col_dtype=getattr(torch, str(z["col"])))


_CTX: dict = {}  # set before the pool forks: "graph" (whose sizes the scalars take), "cache"


def _analyse(ptx: str, cubin: bytes, arch: int):
    """(ptxas -v figures, SASS text) of a compiled kernel, cached by PTX (both tools are slow)."""
    key = hashlib.sha256(f"{triton.__version__} {arch} {ptx}".encode()).hexdigest()[:32]
    path = _CTX["cache"] / "sass" / f"{key}.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([M.ptxas_info(ptx, arch), M.sass_text(cubin)]))
    return json.loads(path.read_text())


def _compile_job(job):
    name, dtype, d, arch = job
    L = KERNELS[name].launch(d, DTYPES[dtype], _CTX["graph"])
    case = dict(kernel=name, dtype=dtype, d=d, arch=arch, status=L if isinstance(L, str) else "ok")
    if isinstance(L, str):
        return case
    try:
        c = M.compile_case(KERNELS[name].fn(), *L, arch)
        info, sass = _analyse(c.asm["ptx"], c.asm["cubin"], arch)
    except Exception as exc:  # noqa: BLE001 - one failed case must not end the report
        return dict(case, status=f"error: {type(exc).__name__}: {str(exc)[:300]}")
    shared = c.metadata.shared + info.pop("static_shared_bytes")
    return dict(case, num_warps=L.num_warps, num_stages=L.num_stages, constexprs=L.constexprs,
                **info, shared_bytes=shared, sass=M.sass_loops(sass), ptx_text=c.asm["ptx"],
                occupancy=M.occupancy(info["registers"], shared, L.num_warps, arch), sass_text=sass)


def compose_ops(cases: list, graphs: dict) -> list:
    """Each op of OPS on sm_90, per graph: the sums of its launches' estimates and serial times
    (None where a launch is missing, e.g. a fused kernel above FUSED_MAX_DIM)."""
    by = {(c["kernel"], c["dtype"], c["d"]): c for c in cases if c["arch"] == 90}
    rows = []
    dims = sorted({c["d"] for c in cases})
    for (op, parts), dt, d in itertools.product(OPS.items(), DTYPES, dims):
        row = dict(op=op, dtype=dt, d=d)
        for gname, g in graphs.items():
            torch_us = M.unfused_ngcf_torch_us(g.n, d, DTYPES[dt].itemsize)
            got = [dict(estimate_us=torch_us[k[6:]], serial_us=torch_us[k[6:]]) if k.startswith(
                "torch:") else by.get((k, kdt or dt, d), {}).get(gname, {}) for k, kdt in parts]
            for key in ("estimate_us", "serial_us"):
                vals = [x.get(key) for x in got]
                row[f"{key}_{gname}"] = None if None in vals else sum(vals)
        rows.append(row)
    return rows


def run(out: Path, dims, dtypes, archs, kernels, jobs: int, cache: Path) -> dict:
    graphs = {name: load_graph(name, label, cache) for name, label in GRAPHS.items()}
    _CTX.update(graph=graphs["gowalla"], cache=cache)
    todo = [(k, dt, d, a) for k in kernels for dt in dtypes for d in dims for a in archs]
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        cases = pool.map(_compile_job, todo, chunksize=1)
    out.mkdir(parents=True, exist_ok=True)
    for case in (c for c in cases if c["status"] == "ok"):
        stem = f"{case['kernel']}-{case['dtype']}-d{case['d']}-sm{case['arch']}"
        (out / f"{stem}.ptx").write_text(case.pop("ptx_text"))
        (out / f"{stem}.sass").write_text(case.pop("sass_text"))
        if case["arch"] == 90:  # the roofline is the H200's
            L = KERNELS[case["kernel"]].launch(case["d"], DTYPES[case["dtype"]], _CTX["graph"])
            for gname, g in graphs.items():
                case[gname] = M.evaluate(case["sass"], KERNELS[case["kernel"]].work(g, L, case["d"]),
                                       L.num_warps, g)
            gw = case["gowalla"]
            case.update(warp_instructions_per_nnz=gw.get("warp_instructions_per_nnz"),
                        useful_lane_fraction=gw.get("useful_lane_fraction"), bound=gw.get("bound"),
                        estimate_us_gowalla=gw.get("estimate_us"),
                        estimate_us_powerlaw_1e6=case["powerlaw_1e6"].get("estimate_us"))
    git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True).stdout.strip()  # noqa: E731
    dirty = " + uncommitted kernels/ changes" if git("status", "--porcelain", "kernels") else ""
    meta = dict(command="python -m bench.kernel_static", triton=triton.__version__, hardware=M.H200,
                commit=git("rev-parse", "--short", "HEAD") + dirty,
                graphs={k: dict(label=GRAPHS[k], n=g.n, nnz=g.nnz, max_degree=int(g.deg.max()),
                                median_degree=float(np.median(g.deg))) for k, g in graphs.items()})
    report = dict(meta=meta, assumptions=M.ASSUMPTIONS, cases=cases, ops=compose_ops(cases, graphs))
    (out / "report.json").write_text(json.dumps(report, indent=1, default=float))
    (out / "summary.md").write_text(summary_markdown(report))
    return report


def _f(v, digits=1):
    return "–" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _us(r: dict, suffix: str = "") -> str:
    est, serial = r.get(f"estimate_us{suffix}"), r.get(f"serial_us{suffix}")
    fmt = lambda v: f"{v:.{1 if v < 100 else 0}f}"  # noqa: E731
    return "–" if est is None else f"{fmt(est)}–{fmt(serial)}"


def summary_markdown(report: dict) -> str:
    """Every sm_90 case (with sm_80's registers, spills and occupancy), the ops, the assumptions."""
    meta, cases = report["meta"], report["cases"]
    sm80 = {(c["kernel"], c["dtype"], c["d"]): c for c in cases if c["arch"] == 80}
    graphs = "; ".join(f"{k} = `{v['label']}`, N {v['n']:,}, nnz {v['nnz']:,}, median degree "
                       f"{v['median_degree']:g}, max {v['max_degree']:,}" for k, v in meta["graphs"].items())
    out = [f"Written by `{meta['command']}` (commit {meta['commit']}, triton {meta['triton']}): sm_90 "
           f"code on the H200 model of bench/kernel_model.py; µs as estimate–serial (all overlapped "
           f"– nothing overlapped). Graphs: {graphs}.", "",
           "| kernel | dtype | d | warps | regs | spill st/ld B | smem KB | occupancy | warp-instr / nnz "
           "| useful lanes | MMA / useful FLOPs | Gowalla µs (bound) | L2 / HBM floor µs | power-law µs "
           "| sm_80 regs, spill B, occupancy |", "|" + "---|" * 15]
    for c in (c for c in cases if c["arch"] == 90):
        if c["status"] != "ok":
            out.append(f"| {c['kernel']} | {c['dtype']} | {c['d']} | {c['status']} |" + " |" * 11)
            continue
        g, o = c["gowalla"], sm80.get((c["kernel"], c["dtype"], c["d"]), {})
        old = (f"{o['registers']}, {sum(o['spill_bytes'].values())}, {o['occupancy']['fraction']:.1%}"
               if o.get("status") == "ok" else o.get("status", "–"))
        out.append(f"| {c['kernel']} | {c['dtype']} | {c['d']} | {c['num_warps']} | {c['registers']}"
                   f" | {c['spill_bytes']['store']}/{c['spill_bytes']['load']} | "
                   f"{c['shared_bytes'] / 1024:.1f} | {c['occupancy']['fraction']:.1%} | "
                   f"{_f(g.get('warp_instructions_per_nnz'))} | {_f(g.get('useful_lane_fraction'), 2)}"
                   f" | {_f(g.get('mma_per_useful_flop'))} | {_us(g)} ({g.get('bound', g.get('model'))})"
                   f" | {_f(g.get('l2_us'))} / {_f(g.get('hbm_us'))} | {_us(c['powerlaw_1e6'])} | {old} |")
    dims = sorted({r["d"] for r in report["ops"]})
    out += ["", "Ops: the sums of their launches' µs, estimate–serial (unfused: the Triton SpMM and "
            "the torch ops of kernels/ngcf_layer.py's composed path).", "",
            "| op | dtype | graph | " + " | ".join(f"d = {d}" for d in dims) + " |",
            "|---|---|---|" + "---|" * len(dims)]
    for (op, dt), rows in itertools.groupby(report["ops"], key=lambda r: (r["op"], r["dtype"])):
        rows = list(rows)
        out += [f"| {op} | {dt} | {gname} | " + " | ".join(_us(r, f"_{gname}") for r in rows) + " |"
                for gname in meta["graphs"]]
    out += ["", "Assumptions:", ""] + [f"- {a}" for a in report["assumptions"]]
    return "\n".join(out) + "\n"


def update_docs(path: Path, markdown: str) -> None:
    """Write ``markdown`` between the kernel_static markers of ``path`` (a new section if absent)."""
    text, block = path.read_text(), f"{DOCS_BEGIN}\n{markdown}{DOCS_END}"
    if DOCS_BEGIN in text and DOCS_END in text:
        text = text[:text.index(DOCS_BEGIN)] + block + text[text.index(DOCS_END) + len(DOCS_END):]
    else:
        text = text.rstrip("\n") + "\n\n## Static kernel report\n\n" + block + "\n"
    path.write_text(text)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--update-docs", type=Path, help="markdown file to write the tables into")
    p.add_argument("--dims", type=int, nargs="+", default=DIMS)
    p.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    p.add_argument("--archs", type=int, nargs="+", default=ARCHS, choices=ARCHS)
    p.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=list(KERNELS))
    p.add_argument("--jobs", type=int, default=os.cpu_count())
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "gnn-kernel-static")
    a = p.parse_args(argv)
    report = run(a.out, a.dims, a.dtypes, a.archs, a.kernels, a.jobs, a.cache)
    if a.update_docs:
        update_docs(a.update_docs, summary_markdown(report))
    bad = sum(c["status"].startswith("error") for c in report["cases"])
    print(f"{len(report['cases'])} cases ({bad} failed to compile): {a.out}/report.json, summary.md")


if __name__ == "__main__":
    main()
