"""Every table of the benchmarks, from their results files, optionally into the docs.

    python -m bench.report results/cpu/results.json --out results/cpu/ [--update-docs MD]
    python -m bench.report results/gpu/ --out results/gpu/ --section gpu --update-docs MD \\
        --headlines README.md

A json is a ``pytest bench/ --benchmark-json`` result: report.md holds each operation's tables
(time, memory, whole-case RSS, GB/s; sizes as rows, providers as columns; one set per dtype
where an operation ran in several), profile.png its plot (bench/plot.py). A folder is a device
run's (bench/device_run.py): its kernels.json is such a json, rendered the same way.
``--update-docs`` / ``--headlines`` replace the text between ``<!-- bench:SECTION:start -->``
and ``<!-- bench:SECTION:end -->``; each table there is followed by ``<!-- numbers: FILES -->``
naming the results files its numbers come from. What was not measured shows as such.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections import defaultdict
from pathlib import Path
from statistics import geometric_mean

from bench.device_run import machine_lines
from bench.measure import fmt_bytes, fmt_count, fmt_time, pivot, repo_path, table, update_docs
from bench.plot import load_suite_json, memory_plot, ok, plot, provider_key, size_key

OP_TITLES = {"spmm": "SpMM  Y = Â·E", "spmm_fwd_bwd": "SpMM forward + backward (dE = Âᵀ dY)",
             "ngcf_layer_fwd": "NGCF layer, forward (no_grad)",
             "ngcf_layer_fwd_bwd": "NGCF layer, forward + backward",
             "train_step": "One training step (propagation, BPR, backward, Adam)",
             "evaluate_all_users": "Full-ranking evaluation of all users (K = 20)",
             "negative_sampling": "Negative sampling, one epoch", "load_ratings": "Loading ratings"}
PLOTTED_OPS = ["spmm", "ngcf_layer_fwd", "ngcf_layer_fwd_bwd", "train_step"]
NON_GRAPH_OPS = ("negative_sampling", "load_ratings", "evaluate_all_users")
TIME_ONLY_OPS = ("negative_sampling", "load_ratings")
MEMORY_COLUMNS = {("spmm", "ours"): "SpMM ours", ("spmm", "dense"): "SpMM dense Â",
                  ("ngcf_layer_fwd_bwd", "ours_fused"): "NGCF fwd + bwd ours_fused",
                  ("ngcf_layer_fwd_bwd", "dense"): "NGCF fwd + bwd dense Â"}
SWEEP_OPS = {"spmm_threshold": "SpMM forward", "ngcf_threshold": "NGCF layer fwd + bwd"}
PARTS = ("time", "memory", "case_rss", "gbps")  # the tables of an op, in order
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
            "G = nnz·d·b would give higher figures"}


# --------------------------------------------------------------------------- an op's tables
def _cells(c: dict) -> dict:
    """A provider's cell in each of the op's tables (``PARTS``), from its record ``c``."""
    if not ok(c):
        return dict(time=c["status"], memory=f"{fmt_bytes(c['memory'])} (not run)",
                    case_rss="not run", gbps="–")
    return dict(time=fmt_time(c["seconds"]), memory=fmt_bytes(c["memory"]),
                case_rss=fmt_bytes(c.get("cpu_case_rss_bytes")),
                gbps=f"{c['gbps']:.1f}" if c.get("gbps") is not None else "–")


def op_tables(op: str, recs: list) -> list:
    """The tables of one operation that apply (``PARTS``): sizes as rows, providers as columns."""
    providers = sorted({r["provider"] for r in recs}, key=provider_key)
    graph_op, recs = op not in NON_GRAPH_OPS, sorted(recs, key=size_key)

    def lead(r):  # a size's leading cells: its label and its counts
        counts = (r.get("N"), r.get("nnz")) if graph_op else \
            (r.get("n_users"), r.get("n_items"), (r.get("nnz") or 0) // 2)
        return (r["size"], *map(fmt_count, counts))

    header = ["size", "N", "nnz"] if graph_op else ["size", "users", "items", "train pairs"]
    kinds = {r["memory_kind"] for r in recs if ok(r)}
    memory = next((k for k in ("peak", "rss") if k in kinds), op if op in TITLES else "repr")
    shown = {"time": True, "memory": op not in TIME_ONLY_OPS, "gbps": op == "spmm",
             "case_rss": op not in TIME_ONLY_OPS and any(r.get("cpu_case_rss_bytes") is not None
                                                         for r in recs)}
    lines = []
    for key in (k for k in PARTS if shown[k]):
        rows = pivot(recs, lead, lambda r: r["provider"], lambda r: _cells(r)[key],  # noqa: B023
                     providers)  # (called right here)
        lines += [TITLES[memory if key == "memory" else key], ""] + table(header + providers, rows) + [""]
    return lines


def op_sections(records: list, heading: str) -> list:
    """Each operation's tables under its title (OP_TITLES' order), one set per dtype where the
    operation ran in several."""
    by_op = defaultdict(list)
    for r in records:
        by_op[r["op"]].append(r)
    lines = []
    for op in [op for op in OP_TITLES if op in by_op] + sorted(set(by_op) - set(OP_TITLES)):
        dtypes = list(dict.fromkeys(r.get("dtype") for r in by_op[op]))
        for dtype in dtypes:
            title = OP_TITLES.get(op, op) + (f", {dtype}" if len(dtypes) > 1 else "")
            lines += [f"{heading} {title}", ""] + op_tables(
                op, [r for r in by_op[op] if r.get("dtype") == dtype])
    return lines


# --------------------------------------------------------------------------- the suite's json
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
    return "\n".join(lines + [""] + op_sections(records, "##")).rstrip() + "\n"


# --------------------------------------------------------------------------- a device run
def _load(folder: Path, name: str):
    path = Path(folder) / name
    return json.loads(path.read_text()) if path.is_file() else None


def _epochs(folder: Path) -> list:
    return (_load(folder, "epochs.json") or {}).get("records", [])


def _kernels(folder: Path):
    """``(records, meta)`` of a device run's kernels.json (empty without one)."""
    path = Path(folder) / "kernels.json"
    return load_suite_json(path) if path.is_file() else ([], {"config": {}, "failed": []})


def kernel_lines(folder: Path) -> list:
    records, meta = _kernels(folder)
    cfg = meta["config"]
    lines = [f"`pytest bench/test_sparse_ops.py` on {cfg.get('device', '?')}, one run per size "
             f"(`{cfg.get('sizes', '?')}`), d = {cfg.get('d', '?')}, dtypes "
             f"{', '.join(cfg.get('dtypes', []))}, about {cfg.get('target_s', '?')} s of timed "
             f"rounds per benchmark (on CUDA the time is `triton.testing.do_bench`'s median).", ""]
    lines += op_sections([r for r in records if r["op"] not in SWEEP_OPS], "###")
    return lines + accuracy_lines(records, meta["failed"]) + sweep_lines(records)


def accuracy_lines(records: list, failed: list) -> list:
    """How many results were checked, the largest relative error per dtype, the failed tests."""
    worst = {}
    for r in (r for r in records if r.get("rel_err") is not None):
        worst[r["dtype"]] = max(worst.get(r["dtype"], 0.0), r["rel_err"])
    shown = "; ".join(f"`{f['test']}` ({f['error']})" for f in failed)
    return [f"**Accuracy checks**: {sum(r.get('rel_err') is not None for r in records)} results "
            f"checked against float64, largest rel err "
            + (", ".join(f"{dtype} {err:.1e}" for dtype, err in worst.items()) or "–")
            + f"; {len(failed)} tests failed" + (f": {shown}" if failed else "") + ".", ""]


def sweep_lines(records: list) -> list:
    """The long-row threshold sweeps (the fastest T by geometric mean over the sizes) and NGCF's
    S saved vs recomputed (geometric mean of the time ratios)."""
    lines = []
    for op, what in SWEEP_OPS.items():
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
            best = min(complete, key=lambda t: geometric_mean([seconds[(s, t)] for s in sizes]))
            lines += [f"Fastest over all sizes (geometric mean of the times): **{best}**.", ""]
    pairs = defaultdict(dict)
    for r in records:
        if r["op"] == "ngcf_layer_fwd_bwd" and r["provider"].startswith("ours_fused") and ok(r):
            pairs[(r["size"], r["dtype"])][r["provider"]] = r["seconds"]
    ratios = [p["ours_fused (S recomputed)"] / p["ours_fused"] for p in pairs.values()
              if len(p) == 2]
    if ratios:
        lines += ["### NGCF layer: S saved vs recomputed in the backward", "",
                  f"Recomputing S takes **{geometric_mean(ratios):.2f}×** the time of saving it "
                  f"(geometric mean over {len(ratios)} sizes and dtypes; the NGCF tables above "
                  f"show both: `ours_fused` saves S).", ""]
    return lines


def epoch_lines(folder: Path) -> list:
    rows = [[r["dataset"], r["provider"], fmt_time(r["s_per_epoch"]), f"{r['epochs_per_s']:.2f}",
             fmt_bytes(r.get("peak_mem_bytes")), f"{r['n_train']:,}", "ok"] if ok(r) else
            [r.get("dataset"), r.get("provider"), "–", "–", "–", "–", r.get("status")]
            for r in _epochs(folder)]
    return table(["dataset", "provider", "s/epoch", "epochs/s", "peak memory", "training pairs",
                  "status"], rows) + [""]


def memory_lines(folder: Path) -> list:
    """Memory against N (memory.png) as one table: ours and the dense Â, float32."""
    recs = sorted((r for r in _kernels(folder)[0] if r["dtype"] == "float32"
                   and (r["op"], r["provider"]) in MEMORY_COLUMNS), key=size_key)
    rows = pivot(recs, lambda r: (r["size"], fmt_count(r["N"]), fmt_count(r["nnz"])),
                 lambda r: MEMORY_COLUMNS[(r["op"], r["provider"])],
                 lambda r: fmt_bytes(r["memory"]) + ("" if ok(r) else " (not run)"),
                 list(MEMORY_COLUMNS.values()))
    return ["Float32, from the kernels' records: representation plus the peak allocated above the "
            "inputs; a dense Â over the budget is not built and shows its computed need N²·4 "
            "bytes (hollow markers in memory.png).", ""] + table(
        ["size", "N", "nnz"] + list(MEMORY_COLUMNS.values()), rows) + [""]


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
        elif name == "memory.png" and memory_plot(_kernels(folder)[0], out / name):
            images.append(out / name)  # not drawn on the device (no matplotlib there)
    for name, title, render in (("kernels.json", "Kernels", kernel_lines),
                                ("epochs.json", "Training epochs", epoch_lines),
                                ("kernels.json", "Memory against graph size", memory_lines),
                                ("curve.json", "Gowalla LightGCN learning curve", curve_lines)):
        body = render(folder) if (folder / name).is_file() else [f"Not measured: no {name}.", ""]
        lines += [f"## {title}", ""] + body
    return "\n".join(lines).rstrip() + "\n", images


def _first(records, **match):
    """The first record that holds every ``key=value`` of ``match`` (None if none does)."""
    return next((r for r in records if all(r.get(k) == v for k, v in match.items())), None)


def _versus(records, what: str, a: dict, b: dict) -> str:
    """``what: A vs B (B/A×)`` of the first ok records holding ``a`` and ``b``; "" if one lacks."""
    a, b = (_first([r for r in records if ok(r)], **m) for m in (a, b))
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
        _kernels(folder)[0]
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
        ngcf = dict(spmm, op="ngcf_layer_fwd_bwd", provider="ours_fused")
        shown = "; ".join(filter(None, [
            _versus(kernels, "SpMM fp32, ours vs cuSPARSE", spmm, dict(spmm, provider="torch_csr")),
            _versus(kernels, "SpMM bf16 vs fp32 (ours)", dict(spmm, dtype="bfloat16"), spmm),
            _versus(kernels, "NGCF layer fwd + bwd fp32, fused vs torch.sparse + torch ops", ngcf,
                    dict(ngcf, provider="torch_unfused"))]))
        if shown:
            lines.append(f"- {size} (N = {first['N']:,}, nnz = {first['nnz']:,}): {shown}")
    gowalla = [r for r in _epochs(folder) if r["dataset"] == "gowalla" and ok(r)]
    lines += ["- Gowalla training, epochs/s (d = 64, 3 layers, batch 2048): " + ", ".join(
        f"{r['provider']} {r['epochs_per_s']:.2f}" for r in gowalla)] if gowalla else []
    ours = max((r for r in kernels if ok(r) and (r["op"], r["provider"], r["dtype"]) ==
                ("spmm", "ours", "float32")), key=lambda r: r["N"], default=None)
    if ours:
        dense = _first(kernels, op="spmm", provider="dense", dtype="float32", size=ours["size"])
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
