"""The static kernel report's tables (tools/kernel_static.py writes them): every case and op in
summary.md, the issue-16 targets and the before/after table that ``--update-docs`` puts into
docs/KERNELS.md between its markers (bench.report's writer)."""
from __future__ import annotations

import itertools

from bench.measure import pivot, table

DTYPES = ("float32", "bfloat16")
SUMS = ("estimate_us", "serial_us", "l2_us", "issue_us", "warp_instructions_per_nnz")  # ops' sums
DOCS_OPS = ("csr_spmm", "ngcf_fwd_fused", "ngcf_bwd_fused", "csr_sddmm")
DOCS_BEGIN, DOCS_END = "<!-- kernel_static:begin -->", "<!-- kernel_static:end -->"


def _f(v, digits=1):
    return "–" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _us(r: dict, suffix: str = "") -> str:
    est, serial = r.get(f"estimate_us{suffix}"), r.get(f"serial_us{suffix}")
    return "–" if est is None else "–".join(f"{v:.{1 if v < 100 else 0}f}" for v in (est, serial))


def _spill(c):
    return sum(c["spill_bytes"].values()) if c.get("status") == "ok" else 0


def _pick(report, kind, name, dtype="float32", d=64, arch=90):
    """The case (``kind`` "cases") or op ("ops") of that name, dtype, d and arch, or None."""
    key = "kernel" if kind == "cases" else "op"
    return next((r for r in report[kind] if r[key] == name and r["dtype"] == dtype and r["d"] == d
                 and r.get("arch", 90) == arch and r.get("status", "ok") == "ok"), None)


def _case_row(report, c, g0, g1) -> str:
    g, o = c[g0], _pick(report, "cases", c["kernel"], c["dtype"], c["d"], 80)
    sm80 = f"{o['registers']}, {_spill(o)}, {o['occupancy']['fraction']:.1%}" if o else "–"
    cells = [c["kernel"], c["dtype"], c["d"], c["num_warps"], c["registers"],
             f"{c['spill_bytes']['store']}/{c['spill_bytes']['load']}",
             f"{c['shared_bytes'] / 1024:.1f}", f"{c['occupancy']['fraction']:.1%}",
             _f(g.get("warp_instructions_per_nnz")), _f(g.get("useful_lane_fraction"), 2),
             _f(g.get("mma_per_useful_flop")), f"{_us(g)} ({g.get('bound', g.get('model'))})",
             f"{_f(g.get('l2_us'))} / {_f(g.get('hbm_us'))}", _us(c.get(g1, {})), sm80]
    return "| " + " | ".join(map(str, cells)) + " |"


def summary_markdown(report: dict) -> str:
    """Every sm_90 case (with sm_80's registers, spills and occupancy), the ops, the targets."""
    meta = report["meta"]
    g0, g1 = (list(meta["graphs"]) + [None])[:2]
    graphs = "; ".join(f"{k} = `{v['label']}`, N {v['n']:,}, nnz {v['nnz']:,}, median degree "
                       f"{v['median_degree']:g}, max {v['max_degree']:,}"
                       for k, v in meta["graphs"].items())
    out = [f"Written by `{meta['command']}` (commit {meta['commit']}, triton {meta['triton']}): "
           f"sm_90 code on the H200 model of tools/kernel_model.py; µs as estimate–serial (all "
           f"overlapped – nothing overlapped). Graphs: {graphs}.", "",
           "| kernel | dtype | d | warps | regs | spill st/ld B | smem KB | occupancy | "
           f"warp-instr / nnz | useful lanes | MMA / useful FLOPs | {g0} µs (bound) | "
           f"L2 / HBM floor µs | {g1} µs | sm_80 regs, spill B, occupancy |", "|" + "---|" * 15]
    for c in (c for c in report["cases"] if c["arch"] == 90):
        out.append(_case_row(report, c, g0, g1) if c["status"] == "ok" else
                   f"| {c['kernel']} | {c['dtype']} | {c['d']} | {c['status']} |" + " |" * 11)
    dims = sorted({r["d"] for r in report["ops"]})
    ops = pivot([(r, g) for r in report["ops"] for g in meta["graphs"]],
                lambda x: (x[0]["op"], x[0]["dtype"], x[1]), lambda x: x[0]["d"],
                lambda x: _us(x[0], f"_{x[1]}"), dims)
    out += ["", "Ops: the sums of their launches' µs, estimate–serial (unfused: the Triton SpMM "
            "and the torch ops of kernels/ngcf_layer.py's composed path).", ""]
    out += table(["op", "dtype", "graph"] + [f"d = {d}" for d in dims], ops)
    out += ["", *docs_markdown(report), "Assumptions:", ""]
    return "\n".join(out + [f"- {a}" for a in report["assumptions"]]) + "\n"


def targets(report) -> list:
    """(target, figure reached, met) of issue 16 on Gowalla at d = 64, sm_90 (float32 unless
    said); [] when the report lacks those cases."""
    c, o = (lambda *a: _pick(report, "cases", *a)), (lambda *a: _pick(report, "ops", *a))
    row, fwd, spmm = c("spmm_row"), c("ngcf_fwd"), o("csr_spmm")
    if not (row and fwd and spmm and spmm.get("estimate_us_gowalla")):
        return []
    g = lambda r, k: r[f"{k}_gowalla"]  # noqa: E731
    ipn, l2, issue, serial = (g(spmm, k) for k in (SUMS[4], SUMS[2], SUMS[3], SUMS[1]))
    mma, occ = fwd["gowalla"]["mma_per_useful_flop"], fwd["occupancy"]["fraction"]
    lanes = row["useful_lane_fraction"]
    speed = [g(o("ngcf_fwd_unfused"), k) / g(o("ngcf_fwd_fused"), k) for k in SUMS[:2]]
    bf = {op: g(o(op), SUMS[0]) / g(o(op, "bfloat16"), SUMS[0]) for op in DOCS_OPS[:3]}
    spills = sorted({f"{x['kernel']} {x['dtype']} d={x['d']} sm_{x['arch']}"
                     for x in report["cases"] if _spill(x)})
    return [("SpMM ≤ 15 warp-instructions per nonzero", f"{ipn:.1f}", ipn <= 15),
            ("SpMM ≥ 85 % useful gather lanes", f"{lanes:.1%}", lanes >= 0.85),
            ("SpMM within 1.3× of the L2 floor (judged: issue ≤ 0.5 and serial ≤ 1.3 × L2 time)",
             f"issue {issue / l2:.2f} ×, serial {serial / l2:.2f} × the L2 time ({l2:.1f} µs)",
             issue <= 0.5 * l2 and serial <= 1.3 * l2),
            ("fused forward: tensor work ≤ 2× useful FLOPs", f"{mma:.2f} ×", mma <= 2),
            ("fused forward: occupancy ≥ 25 %", f"{occ:.1%}", occ >= 0.25),
            ("fused forward ≥ 1.5× faster than csr_spmm + torch ops",
             f"{speed[0]:.2f} × by the estimate, {speed[1]:.2f} × serial", speed[0] >= 1.5),
            ("0 spill bytes, every case, sm_80 and sm_90", ", ".join(spills) or "0", not spills),
            ("bf16 ≥ 1.6× faster than fp32 (estimate)",
             ", ".join(f"{k} {v:.2f} ×" for k, v in bf.items()), min(bf.values()) >= 1.6)]


def docs_markdown(after: dict, before: dict = None) -> list:
    """The targets, then per op (d = 64, Gowalla) its heaviest launch in each report."""
    out = table(["target (d = 64, sm_90, Gowalla)", "reached", "met"],
                [(t, r, "yes" if met else "**no**") for t, r, met in targets(after)])
    reports, rows = (("before", before), ("after", after)) if before else (("", after),), []
    for op, dt, (when, rep) in itertools.product(DOCS_OPS, DTYPES, reports):
        o = _pick(rep, "ops", op, dt)
        cases = [_pick(rep, "cases", k, kdt) for k, kdt in (o or {}).get("launches", [])]
        if not any(cases):
            continue
        c = max((x for x in cases if x), key=lambda x: x["estimate_us_gowalla"] or 0)
        c80 = _pick(rep, "cases", c["kernel"], c["dtype"], arch=80) or {}
        rows.append([op, dt, when, c["kernel"], c["registers"], f"{_spill(c)}, {_spill(c80)}",
                     f"{c['occupancy']['fraction']:.1%}", _f(o["warp_instructions_per_nnz_gowalla"]),
                     _f(c["useful_lane_fraction"], 2), _us(o, "_gowalla"), c["bound"]])
    return out + [""] + table(["op", "dtype", "kernels", "heaviest launch", "regs",
                               "spill B sm_90, sm_80", "occupancy", "warp-instr / nnz (op)",
                               "useful lanes", "Gowalla µs (op)", "bound"], rows) + [""]
