#!/usr/bin/env python
"""Turn a ``pytest bench/ --benchmark-json results.json`` file into the memory profile.

    python scripts/bench_report.py results.json --out results/cpu/

writes ``<out>/report.md`` (per operation: a time table, a memory table and, for SpMM, achieved
GB/s; sizes as rows, providers as columns; providers that were not attempted show
"OOM (needs X GB)") and ``<out>/profile.png`` (time and memory against N, log-log, one line per
provider, dense included, so the gap to the dense adjacency is visible). The plot needs
matplotlib (``pip install 'graphcf-triton[plot]'``); without it only the table is written, and
the report says so. ``--update-docs docs/BENCHMARKS.md --section cpu`` also replaces the text
between ``<!-- bench:cpu:start -->`` and ``<!-- bench:cpu:end -->`` in that file with the report
(headings one level down, the plot linked relative to the file).

Times are pytest-benchmark medians, or the ``triton.testing.do_bench`` median where the run
recorded one (CUDA). Memory is the bytes of the provider's representation (CSR arrays, the dense
N×N matrix, the edge list) plus, on CUDA, the peak allocated above the inputs during the call,
or, on the CPU, the materialised nnz×d message tensor of the gather–scatter provider.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import OrderedDict, defaultdict
from pathlib import Path

OP_TITLES = OrderedDict([
    ("spmm", "SpMM  Y = Â·E"),
    ("ngcf_layer_fwd", "NGCF layer, forward (no_grad)"),
    ("ngcf_layer_fwd_bwd", "NGCF layer, forward + backward"),
    ("train_step", "One training step (propagation, BPR, backward, Adam)"),
    ("evaluate_all_users", "Full-ranking evaluation of all users (K = 20)"),
    ("negative_sampling", "Negative sampling, one epoch"),
    ("load_ratings", "Loading ratings"),
])
PROVIDER_ORDER = ["ours", "ours_fused", "ours_spmm+torch", "ours_chunked", "torch_csr",
                  "torch_unfused", "dense", "dense_scores", "gather_scatter", "scipy",
                  "NGCF", "NGCF [torch backend]", "LightGCN", "LightGCN [torch backend]", "MF",
                  "rank", "rejection", "gnn.data.load_dataset", "plain_parse"]
PLOTTED_OPS = ["spmm", "ngcf_layer_fwd", "ngcf_layer_fwd_bwd", "train_step"]


# --------------------------------------------------------------------------- reading
def load_records(path: Path, stat: str = "median"):
    """``(records, meta)``: one dict per result (run or not run) and the run's metadata.

    ``stat`` picks the pytest-benchmark statistic used as the time ("median" or "min"); a
    ``do_bench`` median, where recorded (CUDA), is used either way.
    """
    data = json.loads(Path(path).read_text())
    records = []
    for bench in data.get("benchmarks", []):
        info = dict(bench.get("extra_info", {}))
        if "op" not in info:  # not one of ours
            continue
        stats = bench.get("stats") or {}
        seconds = info["do_bench_ms"] / 1e3 if "do_bench_ms" in info else stats.get(stat)
        if "gbps" in info and "model_bytes" in info and "do_bench_ms" not in info and seconds:
            info["gbps"] = info["model_bytes"] / seconds / 1e9  # consistent with the shown time
        info.update(seconds=seconds, rounds=stats.get("rounds"), status="ok",
                    timer="do_bench median" if "do_bench_ms" in info else f"pytest-benchmark {stat}")
        # representation + (CUDA) peak working memory above the inputs, or (CPU) the
        # materialised per-edge tensor of an edge-materialising provider
        extra = info.get("peak_mem_bytes", info.get("materialised_bytes", 0))
        info["memory"] = (info.get("repr_bytes") or 0) + (extra or 0) if (
            info.get("repr_bytes") is not None or extra) else None
        info["memory_kind"] = "peak" if "peak_mem_bytes" in info else "repr"
        records.append(info)
    for info in data.get("gnn_not_run", []):
        info = dict(info)
        info.update(seconds=None, memory=info.get("needs_bytes"), memory_kind="needs")
        records.append(info)
    meta = {"machine": data.get("machine_info", {}), "config": data.get("gnn_config", {}),
            "datetime": data.get("datetime"), "commit": data.get("commit_info", {}),
            "version": data.get("version")}
    return records, meta


def _provider_key(p: str):
    return (PROVIDER_ORDER.index(p) if p in PROVIDER_ORDER else len(PROVIDER_ORDER), p)


def _size_key(rec: dict):
    real = not str(rec["size"]).startswith("powerlaw")
    return (0 if real else 1, rec.get("N") or 0, rec.get("nnz") or 0, rec["size"])


# --------------------------------------------------------------------------- formatting
def fmt_time(seconds) -> str:
    if seconds is None:
        return "–"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms" if seconds < 0.1 else f"{seconds * 1e3:.0f} ms"
    return f"{seconds * 1e6:.0f} µs"


def fmt_bytes(n) -> str:
    if n is None:
        return "–"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}" if n / scale < 100 else f"{n / scale:.0f} {unit}"
    return f"{int(n)} B"


def fmt_count(n) -> str:
    return f"{int(n):,}" if n is not None else "–"


def _table(header, rows) -> list:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def op_tables(op: str, recs: list, stat: str = "median") -> list:
    providers = sorted({r["provider"] for r in recs}, key=_provider_key)
    sizes = OrderedDict()
    for r in sorted(recs, key=_size_key):
        sizes.setdefault(r["size"], r)
    cell = {(r["size"], r["provider"]): r for r in recs}
    graph_op = op not in ("negative_sampling", "load_ratings", "evaluate_all_users")
    size_cols = ["size", "N", "nnz"] if graph_op else ["size", "users", "items", "train pairs"]

    def size_part(first):
        if graph_op:
            return [first["size"], fmt_count(first.get("N")), fmt_count(first.get("nnz"))]
        return [first["size"], fmt_count(first.get("n_users")), fmt_count(first.get("n_items")),
                fmt_count((first.get("nnz") or 0) // 2)]

    lines = []
    time_rows, mem_rows, gbps_rows = [], [], []
    for size, first in sizes.items():
        t, m, g = size_part(first), size_part(first), size_part(first)
        for p in providers:
            r = cell.get((size, p))
            if r is None:
                t.append("–"), m.append("–"), g.append("–")
            elif r.get("status", "ok") != "ok":
                t.append(r["status"]), m.append(f"{fmt_bytes(r['memory'])} (not run)"), g.append("–")
            else:
                t.append(fmt_time(r["seconds"]))
                m.append(fmt_bytes(r["memory"]))
                g.append(f"{r['gbps']:.1f}" if r.get("gbps") is not None else "–")
        time_rows.append(t), mem_rows.append(m), gbps_rows.append(g)
    lines += [f"**Time** ({stat} per call)", ""] + _table(size_cols + providers, time_rows) + [""]
    kinds = {r["memory_kind"] for r in recs if r.get("status", "ok") == "ok"}
    if op in ("negative_sampling", "load_ratings"):
        return lines
    if "peak" in kinds:
        what = ("the provider's representation plus the peak allocated above the inputs during "
                "the call (torch.cuda.max_memory_allocated)")
    elif op == "evaluate_all_users":
        what = "score buffer the evaluator holds at once"
    elif op == "train_step":
        what = "adjacency representation (embeddings, weights and Adam state come on top)"
    else:
        what = ("adjacency representation the provider works from (for gather_scatter with the "
                "materialised nnz×d message tensor)")
    lines += [f"**Memory**: {what}", ""] + _table(size_cols + providers, mem_rows) + [""]
    if op == "spmm":
        lines += ["**Achieved GB/s** by the byte model of DESIGN.md §4, "
                  "`4(N+1) + 8·nnz + G + N·d·b` with the best case G = N·d·b (each row of E "
                  "read once); the worst case G = nnz·d·b would give higher figures", ""]
        lines += _table(size_cols + providers, gbps_rows) + [""]
    return lines


def markdown(records: list, meta: dict, plot_note: str, stat: str = "median") -> str:
    cfg, machine = meta["config"], meta["machine"]
    devices = sorted({r.get("device", "?") for r in records})
    dtypes = sorted({r.get("dtype", "?") for r in records if r.get("op") not in
                     ("negative_sampling", "load_ratings")})
    dims = sorted({r.get("d") for r in records if r.get("d")})
    lines = ["# Benchmark report", ""]
    lines += [f"- generated from a pytest-benchmark json of {meta.get('datetime') or '?'} "
              f"(pytest-benchmark {meta.get('version') or '?'})",
              f"- device: {', '.join(devices)}; CPU: {machine.get('cpu', {}).get('brand_raw', '?')}, "
              f"Python {machine.get('python_version', '?')}",
              f"- torch {cfg.get('torch', '?')}, {cfg.get('threads', '?')} threads, "
              f"dtype {', '.join(dtypes)}, d = {', '.join(str(d) for d in dims)}, "
              f"size preset `{cfg.get('sizes', '?')}`",
              f"- dense providers are attempted only within the budget "
              f"({cfg.get('cpu_budget_rule', '?')} on the CPU, 80 % of free memory on CUDA); "
              f"beyond it the needed bytes are computed and shown as OOM",
              f"- {plot_note}"]
    if cfg.get("loadavg"):
        lines.append(f"- 1-minute load average at the start / end of the run: {cfg['loadavg']}")
    commit = meta.get("commit") or {}
    if commit.get("id"):
        lines.append(f"- commit {commit['id'][:10]}{' (dirty tree)' if commit.get('dirty') else ''}")
    lines.append("")
    by_op = defaultdict(list)
    for r in records:
        by_op[r["op"]].append(r)
    ops = [op for op in OP_TITLES if op in by_op] + sorted(set(by_op) - set(OP_TITLES))
    for op in ops:
        lines += [f"## {OP_TITLES.get(op, op)}", ""] + op_tables(op, by_op[op], stat)
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- plotting
def plot(records: list, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    ops = [op for op in PLOTTED_OPS if any(r["op"] == op for r in records)]
    if not ops:
        return False
    providers = sorted({r["provider"] for r in records if r["op"] in ops}, key=_provider_key)
    colors = {p: plt.get_cmap("tab10")(i % 10) for i, p in enumerate(providers)}
    real_markers = {}
    fig, axes = plt.subplots(len(ops), 2, figsize=(12, 3.6 * len(ops)), squeeze=False)
    for row, op in enumerate(ops):
        recs = [r for r in records if r["op"] == op]
        ax_t, ax_m = axes[row]
        for p in sorted({r["provider"] for r in recs}, key=_provider_key):
            mine = sorted((r for r in recs if r["provider"] == p), key=_size_key)
            curve = [r for r in mine if str(r["size"]).startswith("powerlaw")]
            real = [r for r in mine if not str(r["size"]).startswith("powerlaw")]
            ok = [r for r in curve if r.get("status", "ok") == "ok" and r["seconds"]]
            if ok:
                ax_t.plot([r["N"] for r in ok], [r["seconds"] for r in ok], "o-",
                          color=colors[p], label=p)
            mem = [r for r in curve if r.get("memory")]
            ran = [r for r in mem if r.get("status", "ok") == "ok"]
            if ran:
                ax_m.plot([r["N"] for r in ran], [r["memory"] for r in ran], "o-",
                          color=colors[p], label=p)
            oom = [r for r in mem if r.get("status", "ok") != "ok"]
            if oom:  # computed need of a provider that was not attempted: hollow, dashed
                xs = [r["N"] for r in (ran[-1:] + oom)]
                ys = [r["memory"] for r in (ran[-1:] + oom)]
                ax_m.plot(xs, ys, "--", color=colors[p], alpha=0.7)
                ax_m.plot([r["N"] for r in oom], [r["memory"] for r in oom], "o",
                          mfc="none", color=colors[p], label=f"{p} (OOM, computed)")
            for r in real:
                marker = real_markers.setdefault(r["size"], "*^sDv"[len(real_markers) % 5])
                if r.get("status", "ok") == "ok" and r["seconds"]:
                    ax_t.plot([r["N"]], [r["seconds"]], marker, color=colors[p], ms=9, alpha=0.8)
                if r.get("memory"):
                    ax_m.plot([r["N"]], [r["memory"]], marker, color=colors[p], ms=9,
                              alpha=0.8, mfc=None if r.get("status", "ok") == "ok" else "none")
        for ax, ylabel in ((ax_t, "time per call [s]"), (ax_m, "bytes")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("N (nodes)")
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
        kind = {r["memory_kind"] for r in recs if r.get("status", "ok") == "ok"}
        ax_t.set_title(f"{OP_TITLES.get(op, op)}: time")
        ax_m.set_title(f"{op}: " + ("representation + peak above inputs" if "peak" in kind
                                    else "adjacency representation bytes"))
        ax_t.legend(fontsize=7)
        ax_m.legend(fontsize=7)
    if real_markers:
        note = ", ".join(f"{m} {name}" for name, m in real_markers.items())
        fig.text(0.5, 0.002, f"lines: power-law graphs (nnz = 20·N); markers: {note}",
                 ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.015, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def update_docs(doc: Path, section: str, report: str, png: Path | None) -> None:
    """Replace the marked section of ``doc`` with ``report`` (its title dropped, headings demoted)."""
    import os

    start, end = f"<!-- bench:{section}:start -->", f"<!-- bench:{section}:end -->"
    text = doc.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"bench_report: {doc} has no {start} ... {end} markers")
    body = report.split("\n", 1)[1].lstrip("\n")  # drop "# Benchmark report"
    body = "\n".join("#" + line if line.startswith("#") else line for line in body.splitlines())
    if png is not None:
        rel = os.path.relpath(png, doc.parent)
        body = body.replace(f"[{png.name}]({png.name})", f"[{rel}]({rel})")
        body = body.rstrip() + f"\n\n![time and memory against N]({rel})\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{start}\n{body.rstrip()}\n{end}{tail}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", type=Path, help="file written by pytest --benchmark-json")
    parser.add_argument("--out", type=Path, default=Path("."), help="output folder")
    parser.add_argument("--no-plot", action="store_true", help="write the table only")
    parser.add_argument("--stat", choices=("median", "min"), default="median",
                        help="pytest-benchmark statistic shown as the time (default median)")
    parser.add_argument("--update-docs", type=Path, metavar="MD",
                        help="also write the report into this file between section markers")
    parser.add_argument("--section", default="cpu", help="marker name for --update-docs")
    args = parser.parse_args(argv)
    records, meta = load_records(args.json, args.stat)
    if not records:
        print(f"bench_report: no results of bench/ in {args.json}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / "profile.png"
    if args.no_plot:
        made, note = False, "plot not requested (--no-plot)"
    else:
        made = plot(records, png)
        note = (f"plot: [{png.name}]({png.name})" if made else
                "matplotlib is not installed, so only this table was written "
                "(pip install 'graphcf-triton[plot]' for profile.png)")
    md = args.out / "report.md"
    report = markdown(records, meta, note, args.stat)
    md.write_text(report)
    print(f"wrote {md}" + (f" and {png}" if made else f" ({note})"))
    if args.update_docs:
        update_docs(args.update_docs, args.section, report, png if made else None)
        print(f"updated section {args.section!r} of {args.update_docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
