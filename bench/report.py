"""Every table of the benchmarks, from their results files, optionally into the docs.

    python -m bench.report results/cpu/results.json --out results/cpu/ [--update-docs MD]
    python -m bench.report results/gpu/ --out results/gpu/ --section gpu --update-docs MD \\
        --headlines README.md

A json is a ``pytest bench/ --benchmark-json`` result: report.md holds each operation's tables
(time, static estimate, memory, whole-case RSS, GB/s; sizes as rows, providers as columns),
profile.png its plot (bench/plot.py). A folder is a device run's (bench/device_run.py).
``--update-docs`` / ``--headlines`` replace the text between ``<!-- bench:SECTION:start -->``
and ``<!-- bench:SECTION:end -->``; each table there is followed by ``<!-- numbers: FILES -->``
naming the results files its numbers come from. What was not measured shows as such.
"""
from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
from collections import defaultdict
from pathlib import Path

from bench.device_run import machine_lines
from bench.measure import (fmt_bytes, fmt_count, fmt_time, fmt_us, geomean, pivot, repo_path,
                           table, update_docs)
from bench.plot import MEMORY_PLOT, ok, plot, provider_key, size_key

OP_TITLES = {"spmm": "SpMM  Y = Â·E", "spmm_fwd_bwd": "SpMM forward + backward (dE = Âᵀ dY)",
             "ngcf_layer_fwd": "NGCF layer, forward (no_grad)",
             "ngcf_layer_fwd_bwd": "NGCF layer, forward + backward",
             "train_step": "One training step (propagation, BPR, backward, Adam)",
             "evaluate_all_users": "Full-ranking evaluation of all users (K = 20)",
             "negative_sampling": "Negative sampling, one epoch", "load_ratings": "Loading ratings"}
PLOTTED_OPS = ["spmm", "ngcf_layer_fwd", "ngcf_layer_fwd_bwd", "train_step"]
NON_GRAPH_OPS = ("negative_sampling", "load_ratings", "evaluate_all_users")
TIME_ONLY_OPS = ("negative_sampling", "load_ratings")
MEMORY_KINDS = {"peak_mem_bytes": "peak", "cpu_peak_rss_bytes": "rss"}
PARTS = ("time", "estimate", "memory", "case_rss", "gbps")  # the tables of an op, in order
TITLES = {
    "time": "**Time** (median per call)",
    "peak": "**Memory**: the provider's representation plus the peak allocated above the inputs "
            "during the call (torch.cuda.max_memory_allocated)",
    "rss": "**Memory**: the provider's representation (computed) plus its measured working memory: "
           "the peak RSS of the timed calls above the RSS before them (VmHWM, reset through "
           "/proc/self/clear_refs)",
    "evaluate_all_users": "**Memory**: score buffer the evaluator holds at once",
    "train_step": "**Memory**: adjacency representation (embeddings, weights and Adam state come on top)",
    "repr": "**Memory**: adjacency representation the provider works from (for gather_scatter with "
            "the materialised nnz×d message tensor)",
    "case_rss": "**Measured peak RSS of the whole case** above the RSS before it (VmHWM, reset "
                "before each case): the representation as built, the warm-up call (with one-time "
                "costs such as library pages on first use) and the working memory",
    "gbps": "**Achieved GB/s** by the byte model of docs/DESIGN.md §4, `4(N+1) + 8·nnz + G + "
            "N·d·b` with the best case G = N·d·b (each row of E read once); the worst case "
            "G = nnz·d·b would give higher figures",
    "estimate": "**Static estimate** of our ops on the same graph (bench/kernel_static.py's "
                "H200 model, docs/KERNELS.md): all overlapped – nothing overlapped, and in "
                "parentheses the measured time over the estimate"}
KERNEL_OPS = ("spmm", "spmm_fwd_bwd", "ngcf_layer_fwd", "ngcf_layer_fwd_bwd")  # device run's


# --------------------------------------------------------------------------- an op's tables
def _cells(c: dict) -> dict:
    """A provider's cell in each of the op's tables (``PARTS``), from its record ``c``."""
    if not ok(c):
        status = c["status"]
        if status.startswith("error:"):
            status = f"error ({status.split(':')[1].strip()})"
        return dict(time=status, memory=f"{fmt_bytes(c['memory'])} (not run)",
                    case_rss="not run", gbps="–", estimate="–")
    est = c.get("static_estimate_us")
    estimate = "not estimated" if not est else \
        f"{fmt_us(est)}–{fmt_us(c['static_serial_us'])} µs ({c['seconds'] * 1e6 / est:.2f}×)"
    return dict(time=fmt_time(c["seconds"]), memory=fmt_bytes(c["memory"]),
                case_rss=fmt_bytes(c.get("cpu_case_rss_bytes")), estimate=estimate,
                gbps=f"{c['gbps']:.1f}" if c.get("gbps") is not None else "–")


def op_tables(op: str, recs: list, parts=PARTS) -> list:
    """The tables of one operation that apply (``PARTS``): sizes as rows, providers as columns."""
    providers = sorted({r["provider"] for r in recs}, key=provider_key)
    graph_op, recs, lead = op not in NON_GRAPH_OPS, sorted(recs, key=size_key), {}
    for r in recs:  # a size's leading cells: its label and its first record's counts
        counts = (r.get("N"), r.get("nnz")) if graph_op else \
            (r.get("n_users"), r.get("n_items"), (r.get("nnz") or 0) // 2)
        lead.setdefault(r["size"], (r["size"], *map(fmt_count, counts)))
    header = ["size", "N", "nnz"] if graph_op else ["size", "users", "items", "train pairs"]
    kinds = {r["memory_kind"] for r in recs if ok(r)}
    memory = next((k for k in ("peak", "rss") if k in kinds), op if op in TITLES else "repr")
    shown = {"time": True, "memory": op not in TIME_ONLY_OPS, "gbps": op == "spmm",
             "case_rss": op not in TIME_ONLY_OPS and any(r.get("cpu_case_rss_bytes") is not None
                                                         for r in recs),
             "estimate": any("static_estimate_us" in r for r in recs)}
    cells, lines = [(r, _cells(r)) for r in recs], []
    for key in (k for k in parts if shown[k]):
        rows = pivot(cells, lambda x: lead[x[0]["size"]], lambda x: x[0]["provider"],
                     lambda x: x[1][key], providers)  # noqa: B023 - called right here
        lines += [TITLES[memory if key == "memory" else key], ""] + table(header + providers, rows) + [""]
    return lines


# --------------------------------------------------------------------------- the suite's json
def load_suite_json(path: Path):
    """``(records, meta)`` of a pytest-benchmark json: one dict per result, run or not run."""
    data, records = json.loads(Path(path).read_text()), []
    for bench in data.get("benchmarks", []):
        info = dict(bench.get("extra_info", {}))
        if "op" not in info:  # not one of ours
            continue
        seconds = info["do_bench_ms"] / 1e3 if "do_bench_ms" in info else \
            (bench.get("stats") or {}).get("median")
        if "gbps" in info and "model_bytes" in info and "do_bench_ms" not in info and seconds:
            info["gbps"] = info["model_bytes"] / seconds / 1e9  # consistent with the shown time
        # representation + the measured working peak (CUDA allocator or CPU RSS); results older
        # than the RSS measurement: + the computed materialised per-edge tensor
        kind = next((k for k in ("peak_mem_bytes", "cpu_peak_rss_bytes", "materialised_bytes")
                     if info.get(k) is not None), None)
        extra, has_repr = info[kind] if kind else 0, info.get("repr_bytes") is not None
        info.update(seconds=seconds, status="ok",
                    memory=(info.get("repr_bytes") or 0) + extra if has_repr or extra else None,
                    memory_kind=MEMORY_KINDS.get(kind, "repr"))
        records.append(info)
    records += [dict(info, seconds=None, memory=info.get("needs_bytes"), memory_kind="needs")
                for info in data.get("gnn_not_run", [])]
    return records, {"machine": data.get("machine_info", {}), "config": data.get("gnn_config", {}),
                     "datetime": data.get("datetime"), "commit": data.get("commit_info", {}),
                     "version": data.get("version")}


def suite_markdown(records: list, meta: dict, plot_note: str) -> str:
    cfg, machine, commit = meta["config"], meta["machine"], meta.get("commit") or {}
    dtypes = sorted({r.get("dtype", "?") for r in records if r.get("op") not in TIME_ONLY_OPS})
    dims = ", ".join(str(d) for d in sorted({r.get("d") for r in records if r.get("d")}))
    lines = ["# Benchmark report", "",
             f"- generated from a pytest-benchmark json of {meta.get('datetime') or '?'} "
             f"(pytest-benchmark {meta.get('version') or '?'})",
             f"- device: {', '.join(sorted({r.get('device', '?') for r in records}))}; CPU: "
             f"{machine.get('cpu', {}).get('brand_raw', '?')}, "
             f"Python {machine.get('python_version', '?')}",
             f"- torch {cfg.get('torch', '?')}, {cfg.get('threads', '?')} threads, dtype "
             f"{', '.join(dtypes)}, d = {dims}, size preset `{cfg.get('sizes', '?')}`",
             f"- dense providers are attempted only within the budget "
             f"({cfg.get('cpu_budget_rule', '?')} on the CPU, 80 % of free memory on CUDA); beyond "
             f"it the needed bytes are computed and shown as OOM", f"- {plot_note}"]
    if cfg.get("loadavg"):
        lines.append(f"- 1-minute load average at the start / end of the run: {cfg['loadavg']}")
    if commit.get("id"):
        dirty = " (dirty tree)" if commit.get("dirty") else ""
        lines.append(f"- commit {commit['id'][:10]}{dirty}")
    by_op = defaultdict(list)
    for r in records:
        by_op[r["op"]].append(r)
    lines.append("")
    for op in [op for op in OP_TITLES if op in by_op] + sorted(set(by_op) - set(OP_TITLES)):
        lines += [f"## {OP_TITLES.get(op, op)}", ""] + op_tables(op, by_op[op])
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- a device run
def _load(folder: Path, name: str):
    path = Path(folder) / name
    return json.loads(path.read_text()) if path.is_file() else None


def _records(folder: Path, name: str) -> list:
    return [dict({"seconds": None, "memory": None, "memory_kind": "peak"}, **r)
            for r in (_load(folder, name) or {}).get("records", [])]


def kernel_lines(folder: Path) -> list:
    records, worst = _records(folder, "kernels.json"), {}
    lines = [f"Copy bandwidth measured in the same run: "
             f"**{_load(folder, 'kernels.json')['meta'].get('copy_gbps', 0):.0f} GB/s** "
             f"(device-to-device, read + write).", ""]
    for op, dtype in itertools.product(KERNEL_OPS, ("float32", "bfloat16")):
        recs = [r for r in records if r["op"] == op and r["dtype"] == dtype]
        lines += [f"### {OP_TITLES[op]}, {dtype}", ""] + op_tables(op, recs) if recs else []
    for r in (r for r in records if r.get("rel_err") is not None):
        worst[r["dtype"]] = max(worst.get(r["dtype"], 0.0), r["rel_err"])
    failed = [f"{r['op']} {r['dtype']} {r['provider']} {r['size']} ({r['rel_err']:.1e})"
              for r in records if r.get("check_ok") is False]
    lines += [f"**Accuracy checks**: {len(failed)} of {sum('check_ok' in r for r in records)} "
              f"outside tolerance{': ' + '; '.join(failed) if failed else ''}; largest rel err "
              + ", ".join(f"{dtype} {err:.1e}" for dtype, err in worst.items()) + ".", ""]
    return lines + kernel_estimate_lines(records) + sweep_lines(records)


def kernel_estimate_lines(records: list) -> list:
    """Each of our kernels' measured time in one call (torch.profiler, CUDA only) beside the
    static model's estimate of it, per size (the composed layer's ``torch:`` ops are not ours)."""
    def cell(got, est):
        return (f"{fmt_us(got) if got else 'not measured'} / "
                f"{'not estimated' if est is None else fmt_us(est)}"
                + (f" ({got / est:.2f}×)" if got and est else ""))

    kernels = [(r, f"`{name}`", cell((r.get("measured_kernels_us") or {}).get(name), est))
               for r in records if ok(r) for name, est in (r.get("static_kernels_us") or {}).items()
               if not name.startswith("torch:")]
    sizes = list(dict.fromkeys(r["size"] for r in records))
    rows = pivot(kernels, lambda x: (x[0]["op"], x[0]["dtype"], x[0]["provider"], x[1]),
                 lambda x: x[0]["size"], lambda x: x[2], sizes)
    return ["### Our kernels: measured / static estimate, µs per call", ""] + table(
        ["op", "dtype", "provider", "kernel"] + sizes, rows) + [""] if rows else []


def sweep_lines(records: list) -> list:
    """The long-row threshold sweeps (the fastest T by geometric mean over the sizes) and NGCF's
    S saved vs recomputed (geometric mean of the time ratios)."""
    lines = []
    for op, what in (("spmm_threshold", "SpMM forward"), ("ngcf_threshold", "NGCF layer fwd + bwd")):
        recs = [r for r in records if r["op"] == op and ok(r)]
        seconds = {(r["size"], r["provider"]): r["seconds"] for r in recs}
        sizes = list(dict.fromkeys(size for size, _ in seconds))
        ts = sorted({t for _, t in seconds}, key=lambda t: float(t[2:].replace("off", "inf")))
        if recs:
            rows = pivot(recs, lambda r: (r["size"], f"{r['max_degree']:,}"),
                         lambda r: r["provider"], lambda r: fmt_time(r["seconds"]), ts)
            lines += [f"### Long-row threshold sweep: {what}, float32", ""] + table(
                ["size", "max row degree"] + ts, rows) + [""]
        complete = [t for t in ts if all((s, t) in seconds for s in sizes)]
        if complete:
            best = min(complete, key=lambda t: geomean([seconds[(s, t)] for s in sizes]))
            lines += [f"Fastest over all sizes (geometric mean of the times): **{best}**.", ""]
    pairs = defaultdict(dict)
    for r in records:
        if r["op"] == "ngcf_layer_fwd_bwd" and r["provider"].startswith("ours_fused (") and ok(r):
            pairs[(r["size"], r["dtype"])][r["provider"]] = r["seconds"]
    ratios = [p["ours_fused (S recomputed)"] / p["ours_fused (S saved)"]
              for p in pairs.values() if len(p) == 2]
    if ratios:
        lines += ["### NGCF layer: S saved vs recomputed in the backward", "",
                  f"Recomputing S takes **{geomean(ratios):.2f}×** the time of saving it "
                  f"(geometric mean over {len(ratios)} sizes and dtypes; the NGCF tables above "
                  f"show both).", ""]
    return lines


def epoch_lines(folder: Path) -> list:
    rows = [[r["dataset"], r["provider"], fmt_time(r["s_per_epoch"]), f"{r['epochs_per_s']:.2f}",
             fmt_bytes(r.get("peak_mem_bytes")), f"{r['n_train']:,}", "ok"] if ok(r) else
            [r.get("dataset"), r.get("provider"), "–", "–", "–", "–", r.get("status")]
            for r in _records(folder, "epochs.json")]
    return table(["dataset", "provider", "s/epoch", "epochs/s", "peak memory", "training pairs",
                  "status"], rows) + [""]


def memory_lines(folder: Path) -> list:
    records, lines = _records(folder, "memory.json"), []
    for op, title in (("spmm", "SpMM"), ("ngcf_layer_fwd_bwd", "NGCF layer fwd + bwd")):
        recs = [r for r in records if r["op"] == op]
        lines += [f"#### {title}", ""] + op_tables(op, recs, parts=("memory",))[2:] if recs else []
    return lines


def curve_lines(folder: Path) -> list:
    def _num(v) -> str:
        return f"{v:.4f}" if isinstance(v, (int, float)) else "–"

    c = _load(folder, "curve.json")
    paper = c.get("paper") or {}
    evals = [[h["epoch"]] + [_num(h.get(k)) for k in ("loss", "test_recall@20", "test_ndcg@20")]
             for h in c.get("history", []) if "test_recall@20" in h]
    return [f"`python3 -m gnn.reproduce {c.get('config_path', 'configs/gowalla/lightgcn.json')} "
            f"--device {c.get('device_type', 'cuda')} --epochs {c.get('epochs')}`: "
            f"{c.get('epochs')} epochs ({fmt_time(c.get('sec_per_epoch'))} per epoch, sampling "
            f"`{c.get('config', {}).get('sampling', '?')}`); test recall@20 "
            f"**{_num(c.get('recall@20'))}**, NDCG@20 **{_num(c.get('ndcg@20'))}** at the last "
            f"evaluation (paper after 1000 epochs: {_num(paper.get('recall@20'))} / "
            f"{_num(paper.get('ndcg@20'))}).", ""] + (
        table(["epoch", "loss", "recall@20", "ndcg@20"], evals) + [""] if evals else [])


def device_markdown(folder: Path, out: Path, draw: bool = True):
    """``(markdown, images)`` of a device run's folder; its images are copied beside the report."""
    device = _load(folder, "device.json")
    if device is None:
        raise SystemExit(f"bench.report: {folder} has no device.json (not a device run's folder)")
    lines, images = ["# GPU results (device run)", ""] + machine_lines(device), []
    for name in ("memory.png", "curve.png") if draw else ():
        if (folder / name).is_file():
            if folder.resolve() != out.resolve():
                shutil.copy(folder / name, out / name)
            images.append(out / name)
        elif name == "memory.png" and plot(_records(folder, "memory.json"), out / name,
                                           *MEMORY_PLOT):  # the stage ran out of time before it
            images.append(out / name)
    for name, title, render in (("kernels.json", "Kernels", kernel_lines),
                                ("epochs.json", "Training epochs", epoch_lines),
                                ("memory.json", "Memory against graph size", memory_lines),
                                ("curve.json", "Gowalla LightGCN learning curve", curve_lines)):
        body = render(folder) if (folder / name).is_file() else [f"Not measured: no {name}.", ""]
        lines += [f"## {title}", ""] + body
    return "\n".join(lines).rstrip() + "\n", images


def _versus(records, what: str, a: dict, b: dict) -> str:
    """``what: A vs B (B/A×)`` of the first ok records holding ``a`` and ``b``; "" if one lacks."""
    a, b = (next((r for r in records if ok(r) and all(r.get(k) == v for k, v in m.items())), None)
            for m in (a, b))
    if not (a and b):
        return ""
    text = (f"{what}: {fmt_time(a['seconds'])} vs {fmt_time(b['seconds'])} "
            f"(**{b['seconds'] / a['seconds']:.2f}×**)")
    if a.get("peak_mem_bytes") and b.get("peak_mem_bytes") and a["dtype"] == b["dtype"]:
        text += f", peak memory {fmt_bytes(a['memory'])} vs {fmt_bytes(b['memory'])}"
    return text


def headlines(folder: Path) -> str:
    """The few numbers of a device run that the README quotes, each read off its files."""
    device, curve, kernels = _load(folder, "device.json"), _load(folder, "curve.json"), \
        _records(folder, "kernels.json")
    m = device.get("machine", {})
    lines = [f"Device run of {device.get('started', '?')} on {m.get('gpu', 'no GPU')} (torch "
             f"{m.get('torch', '?')}, triton {m.get('triton', '?')}); full tables in "
             f"[docs/BENCHMARKS.md](docs/BENCHMARKS.md#gpu-results-the-device-run)."
             + (" **Dry run on the CPU: the numbers mean nothing.**" if device.get("dry_run") else ""),
             ""]
    lines += [f"- Tests on CUDA: {s['status']}, `{(s.get('tail') or ['?'])[-1]}`"
              for s in device.get("stages", []) if s["name"] == "tests"]
    for size in dict.fromkeys(r["size"] for r in kernels):
        first = next(r for r in kernels if r["size"] == size)
        spmm = {"size": size, "op": "spmm", "dtype": "float32", "provider": "ours"}
        ngcf = dict(spmm, op="ngcf_layer_fwd_bwd", provider="ours_fused (S saved)")
        shown = "; ".join(filter(None, [
            _versus(kernels, "SpMM fp32, ours vs cuSPARSE", spmm, dict(spmm, provider="torch_csr")),
            _versus(kernels, "SpMM bf16 vs fp32 (ours)", dict(spmm, dtype="bfloat16"), spmm),
            _versus(kernels, "NGCF layer fwd + bwd fp32, fused vs torch.sparse + torch ops", ngcf,
                    dict(ngcf, provider="torch_unfused"))]))
        if shown:
            lines.append(f"- {size} (N = {first['N']:,}, nnz = {first['nnz']:,}): {shown}")
    gowalla = [r for r in _records(folder, "epochs.json") if r["dataset"] == "gowalla" and ok(r)]
    lines += ["- Gowalla training, epochs/s (d = 64, 3 layers, batch 2048): " + ", ".join(
        f"{r['provider']} {r['epochs_per_s']:.2f}" for r in gowalla)] if gowalla else []
    memory = _records(folder, "memory.json")
    ours = max((r for r in memory if r["provider"] == "ours" and ok(r)), key=lambda r: r["N"], default=None)
    dense = ours and next((r for r in memory if r["op"] == "spmm" and r["provider"] == "dense"
                           and r["size"] == ours["size"]), None)
    if ours:
        text = f"- Memory of one SpMM at N = {ours['N']:,}: ours {fmt_bytes(ours['memory'])}"
        if dense:
            built = "" if ok(dense) else " (computed: not built)"
            text += f", a dense Â {fmt_bytes(dense['memory'])}{built}"
        lines.append(text)
    if curve:
        paper, c = curve.get("paper") or {}, curve
        lines.append(f"- Gowalla LightGCN, {c.get('epochs')} epochs ({c.get('device', '?')}): test "
                     f"recall@20 {c.get('recall@20', 0):.4f}, NDCG@20 {c.get('ndcg@20', 0):.4f} "
                     f"({fmt_time(curve.get('sec_per_epoch'))} per epoch; the paper's 1000 epochs: "
                     f"{paper.get('recall@20', '–')} / {paper.get('ndcg@20', '–')})")
    return "# GPU headlines\n\n" + "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- CLI
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", type=Path, help="a pytest-benchmark json or a device run's folder")
    p.add_argument("--out", type=Path, default=Path("."), help="output folder")
    p.add_argument("--no-plot", action="store_true", help="write the tables only")
    p.add_argument("--update-docs", type=Path, metavar="MD", action="append", default=[],
                   help="also write the report into this file's section (repeatable)")
    p.add_argument("--section", default="cpu", help="marker name for --update-docs")
    p.add_argument("--headlines", type=Path, metavar="MD", action="append", default=[],
                   help="a device run's headline numbers into this file's section (repeatable)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.source.is_dir():
        report, images = device_markdown(args.source, args.out, draw=not args.no_plot)
    elif args.headlines:
        raise SystemExit("bench.report: --headlines needs a device run's folder")
    else:
        records, meta = load_suite_json(args.source)
        if not records:
            raise SystemExit(f"bench.report: no results of bench/ in {args.source}")
        png = args.out / "profile.png"
        made = not args.no_plot and plot(records, png, PLOTTED_OPS, OP_TITLES)
        note = f"plot: [{png.name}]({png.name})" if made else "plot not requested (--no-plot)" \
            if args.no_plot else "matplotlib is not installed, so only this table was written " \
            "(pip install 'graphcf-triton[plot]' for profile.png)"
        report, images = suite_markdown(records, meta, note), [png] if made else []
    (args.out / "report.md").write_text(report)
    print(f"wrote {args.out / 'report.md'}" + "".join(f" and {p}" for p in images))
    # report.md too: its memory cells are sums (representation + peak) found only there
    sources = [repo_path(args.source) + ("/*.json" if args.source.is_dir() else ""),
               repo_path(args.out / "report.md")]
    for doc in args.update_docs:
        update_docs(doc, args.section, report, sources, images)
        print(f"updated section {args.section!r} of {doc}")
    if args.headlines:
        short = headlines(args.source)
        (args.out / "headlines.md").write_text(short)
        for doc in args.headlines:
            update_docs(doc, args.section, short, sources)
            print(f"updated section {args.section!r} of {doc} with the headlines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
