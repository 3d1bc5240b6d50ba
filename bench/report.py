"""Benchmark results as markdown tables and a plot, optionally written into the docs.

    python -m bench.report results/cpu/results.json --out results/cpu/ \\
        [--update-docs docs/BENCHMARKS.md --section cpu] [--no-plot] [--stat median|min]
    python -m bench.report results/gpu/ --out results/gpu/ --section gpu \\
        --update-docs docs/BENCHMARKS.md --headlines README.md  # a device run's folder

A json file is a ``pytest bench/ --benchmark-json`` result: ``<out>/report.md`` gets per operation
a time table, a memory table (and, measured on the CPU, the peak RSS of each case) and, for
SpMM, achieved GB/s; sizes as rows, providers as columns; providers that were not attempted show
"OOM (needs X GB)". ``<out>/profile.png`` plots time and memory against N (needs matplotlib).
A folder is a device run's output (``python3 -m bench.device_run``): see bench/report_device.py;
``--headlines FILE`` writes its few headline numbers (bench/report_headlines.py) into FILE.
``--update-docs FILE --section NAME`` replaces the text between ``<!-- bench:NAME:start -->``
and ``<!-- bench:NAME:end -->`` of FILE with the report (headings one level down, links made
relative to FILE).

Times are pytest-benchmark medians, or the ``triton.testing.do_bench`` median where the run
recorded one (CUDA). Memory is the bytes of the provider's representation (CSR arrays, the dense
N×N matrix, the edge list) plus, on CUDA, the peak allocated above the inputs during the call,
or, on the CPU, the materialised nnz×d message tensor of the gather–scatter provider.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import OrderedDict, defaultdict
from pathlib import Path

from bench.report_plot import plot, provider_key, size_key

OP_TITLES = OrderedDict([
    ("spmm", "SpMM  Y = Â·E"),
    ("ngcf_layer_fwd", "NGCF layer, forward (no_grad)"),
    ("ngcf_layer_fwd_bwd", "NGCF layer, forward + backward"),
    ("train_step", "One training step (propagation, BPR, backward, Adam)"),
    ("evaluate_all_users", "Full-ranking evaluation of all users (K = 20)"),
    ("negative_sampling", "Negative sampling, one epoch"),
    ("load_ratings", "Loading ratings"),
])
PLOTTED_OPS = ["spmm", "ngcf_layer_fwd", "ngcf_layer_fwd_bwd", "train_step"]
NON_GRAPH_OPS = ("negative_sampling", "load_ratings", "evaluate_all_users")


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
        info.update(seconds=seconds, rounds=stats.get("rounds"), status="ok")
        # representation + the measured peak working memory above the inputs (CUDA allocator,
        # or CPU peak RSS); older CPU results: + the computed materialised per-edge tensor
        kind = next((k for k in ("peak_mem_bytes", "cpu_peak_rss_bytes", "materialised_bytes")
                     if info.get(k) is not None), None)
        extra = info[kind] if kind else 0
        has_repr = info.get("repr_bytes") is not None
        info["memory"] = (info.get("repr_bytes") or 0) + extra if (has_repr or extra) else None
        info["memory_kind"] = {"peak_mem_bytes": "peak", "cpu_peak_rss_bytes": "rss"}.get(kind, "repr")
        records.append(info)
    for info in data.get("gnn_not_run", []):
        records.append(dict(info, seconds=None, memory=info.get("needs_bytes"),
                            memory_kind="needs"))
    meta = {"machine": data.get("machine_info", {}), "config": data.get("gnn_config", {}),
            "datetime": data.get("datetime"), "commit": data.get("commit_info", {}),
            "version": data.get("version")}
    return records, meta


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


def table(header, rows) -> list:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def _memory_note(op: str, kinds: set) -> str:
    if "peak" in kinds:
        return ("the provider's representation plus the peak allocated above the inputs during "
                "the call (torch.cuda.max_memory_allocated)")
    if "rss" in kinds:
        return ("the provider's representation (computed) plus its measured working memory: the "
                "peak RSS of the timed calls above the RSS before them (VmHWM, reset through "
                "/proc/self/clear_refs)")
    if op == "evaluate_all_users":
        return "score buffer the evaluator holds at once"
    if op == "train_step":
        return "adjacency representation (embeddings, weights and Adam state come on top)"
    return ("adjacency representation the provider works from (for gather_scatter with the "
            "materialised nnz×d message tensor)")


def op_tables(op: str, recs: list, stat: str = "median") -> list:
    providers = sorted({r["provider"] for r in recs}, key=provider_key)
    sizes = OrderedDict()
    for r in sorted(recs, key=size_key):
        sizes.setdefault(r["size"], r)
    cell = {(r["size"], r["provider"]): r for r in recs}
    graph_op = op not in NON_GRAPH_OPS

    def size_part(first):
        if graph_op:
            return [first["size"], fmt_count(first.get("N")), fmt_count(first.get("nnz"))]
        return [first["size"], fmt_count(first.get("n_users")), fmt_count(first.get("n_items")),
                fmt_count((first.get("nnz") or 0) // 2)]

    size_cols = ["size", "N", "nnz"] if graph_op else ["size", "users", "items", "train pairs"]
    rows = {"time": [], "memory": [], "rss": [], "gbps": []}
    for size, first in sizes.items():
        row = {key: size_part(first) for key in rows}
        for p in providers:
            r = cell.get((size, p))
            if r is None:
                values = ["–"] * 4
            elif r.get("status", "ok") != "ok":
                status = r["status"].split(":")[0] + f" ({r['status'].split(':')[1].strip()})" \
                    if r["status"].startswith("error:") else r["status"]
                values = [status, f"{fmt_bytes(r['memory'])} (not run)", "not run", "–"]
            else:
                gbps = r.get("gbps")
                values = [fmt_time(r["seconds"]), fmt_bytes(r["memory"]),
                          fmt_bytes(r.get("cpu_case_rss_bytes")),
                          f"{gbps:.1f}" if gbps is not None else "–"]
            for key, value in zip(rows, values):
                row[key].append(value)
        for key in rows:
            rows[key].append(row[key])
    header = size_cols + providers
    lines = [f"**Time** ({stat} per call)", ""] + table(header, rows["time"]) + [""]
    if op in ("negative_sampling", "load_ratings"):
        return lines
    kinds = {r["memory_kind"] for r in recs if r.get("status", "ok") == "ok"}
    lines += [f"**Memory**: {_memory_note(op, kinds)}", ""] + table(header, rows["memory"]) + [""]
    if any(r.get("cpu_case_rss_bytes") is not None for r in recs):
        lines += ["**Measured peak RSS of the whole case** above the RSS before it (VmHWM, "
                  "reset before each case): the representation as built, the warm-up call (with "
                  "one-time costs such as library pages on first use) and the working memory", ""]
        lines += table(header, rows["rss"]) + [""]
    if op == "spmm":
        lines += ["**Achieved GB/s** by the byte model of docs/DESIGN.md §4, "
                  "`4(N+1) + 8·nnz + G + N·d·b` with the best case G = N·d·b (each row of E "
                  "read once); the worst case G = nnz·d·b would give higher figures", ""]
        lines += table(header, rows["gbps"]) + [""]
    return lines


def markdown(records: list, meta: dict, plot_note: str, stat: str = "median") -> str:
    cfg, machine = meta["config"], meta["machine"]
    devices = sorted({r.get("device", "?") for r in records})
    dtypes = sorted({r.get("dtype", "?") for r in records if r.get("op") not in
                     ("negative_sampling", "load_ratings")})
    dims = sorted({r.get("d") for r in records if r.get("d")})
    lines = ["# Benchmark report", "",
             f"- generated from a pytest-benchmark json of {meta.get('datetime') or '?'} "
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


# --------------------------------------------------------------------------- docs
def update_docs(doc: Path, section: str, report: str, images=()) -> None:
    """Replace the marked section of ``doc`` with ``report`` (its title dropped, headings
    demoted, links to ``images`` made relative to ``doc``; each image shown at the end)."""
    start, end = f"<!-- bench:{section}:start -->", f"<!-- bench:{section}:end -->"
    text = doc.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"bench.report: {doc} has no {start} ... {end} markers")
    body = report.split("\n", 1)[1].lstrip("\n")  # drop the "# ..." title
    body = "\n".join("#" + line if line.startswith("#") else line for line in body.splitlines())
    shown = []
    for png in images:
        rel = os.path.relpath(png, doc.parent)
        body = body.replace(f"]({png.name})", f"]({rel})")
        shown.append(f"![{png.stem}]({rel})")
    if shown:
        body = body.rstrip() + "\n\n" + "\n".join(shown) + "\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{start}\n{body.rstrip()}\n{end}{tail}")


def report_pytest_json(args) -> tuple:
    """``(markdown, images)`` of a pytest-benchmark json, written into ``args.out``."""
    records, meta = load_records(args.source, args.stat)
    if not records:
        raise SystemExit(f"bench.report: no results of bench/ in {args.source}")
    png = args.out / "profile.png"
    made = False
    if args.no_plot:
        note = "plot not requested (--no-plot)"
    else:
        made = plot(records, png, PLOTTED_OPS, OP_TITLES)
        note = (f"plot: [{png.name}]({png.name})" if made else
                "matplotlib is not installed, so only this table was written "
                "(pip install 'graphcf-triton[plot]' for profile.png)")
    return markdown(records, meta, note, args.stat), [png] if made else []


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path,
                        help="a pytest --benchmark-json file, or a device run's folder")
    parser.add_argument("--out", type=Path, default=Path("."), help="output folder")
    parser.add_argument("--no-plot", action="store_true", help="write the tables only")
    parser.add_argument("--stat", choices=("median", "min"), default="median",
                        help="pytest-benchmark statistic shown as the time (default median)")
    parser.add_argument("--update-docs", type=Path, metavar="MD", action="append", default=[],
                        help="also write the report into this file between section markers "
                             "(repeatable, e.g. the docs and the README)")
    parser.add_argument("--section", default="cpu", help="marker name for --update-docs")
    parser.add_argument("--headlines", type=Path, metavar="MD", action="append", default=[],
                        help="a device run's few headline numbers into this file's section "
                             "(repeatable; e.g. the README)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.source.is_dir():
        from bench.report_device import report_device_run

        report, images = report_device_run(args.source, args.out, plot=not args.no_plot)
    elif args.headlines:
        raise SystemExit("bench.report: --headlines needs a device run's folder")
    else:
        report, images = report_pytest_json(args)
    md = args.out / "report.md"
    md.write_text(report)
    print(f"wrote {md}" + "".join(f" and {p}" for p in images))
    for doc in args.update_docs:
        update_docs(doc, args.section, report, images)
        print(f"updated section {args.section!r} of {doc}")
    if args.headlines:
        from bench.report_headlines import headlines

        short = headlines(args.source)
        (args.out / "headlines.md").write_text(short)
        for doc in args.headlines:
            update_docs(doc, args.section, short)
            print(f"updated section {args.section!r} of {doc} with the headlines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
