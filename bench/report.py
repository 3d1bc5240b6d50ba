"""Every table and plot of the benchmarks, from their results files, optionally into the docs.

    python -m bench.report results/cpu/results.json --out results/cpu/ \\
        [--update-docs docs/BENCHMARKS.md --section cpu] [--no-plot]
    python -m bench.report results/gpu/ --out results/gpu/ --section gpu \\
        --update-docs docs/BENCHMARKS.md --headlines README.md

A json file is a ``pytest bench/ --benchmark-json`` result: ``report.md`` gets, per operation,
time, memory, the CPU's whole-case peak RSS and (SpMM) achieved GB/s, sizes as rows and
providers as columns, "OOM (needs X)" for providers not attempted; ``profile.png`` plots time and
memory against N (needs matplotlib). A folder is a device run's (bench/device_run.py): the
machine and stages, kernel tables, the two sweeps, epochs, memory profile and learning curve;
``--headlines FILE`` writes its few headline numbers into FILE. ``--update-docs FILE`` replaces
FILE's text between ``<!-- bench:SECTION:start -->`` and ``<!-- bench:SECTION:end -->``
(headings one level down, links relative to FILE). Nothing is estimated: what was not measured
shows as such.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from collections import defaultdict
from pathlib import Path

from bench.measure import fmt_bytes
from bench.report_plot import ok, plot, provider_key, size_key

OP_TITLES = {"spmm": "SpMM  Y = Â·E", "ngcf_layer_fwd": "NGCF layer, forward (no_grad)",
             "ngcf_layer_fwd_bwd": "NGCF layer, forward + backward",
             "train_step": "One training step (propagation, BPR, backward, Adam)",
             "evaluate_all_users": "Full-ranking evaluation of all users (K = 20)",
             "negative_sampling": "Negative sampling, one epoch", "load_ratings": "Loading ratings"}
PLOTTED_OPS = ["spmm", "ngcf_layer_fwd", "ngcf_layer_fwd_bwd", "train_step"]
NON_GRAPH_OPS = ("negative_sampling", "load_ratings", "evaluate_all_users")
KERNEL_SECTIONS = {("spmm", "float32"): "SpMM Y = Â·E, float32",
                   ("spmm", "bfloat16"): "SpMM Y = Â·E, bfloat16 (fp32 accumulation)",
                   ("spmm_fwd_bwd", "float32"): "SpMM forward + backward (dE = Âᵀ dY), float32",
                   ("ngcf_layer_fwd_bwd", "float32"): "NGCF layer forward + backward, float32",
                   ("ngcf_layer_fwd_bwd", "bfloat16"): "NGCF layer forward + backward, bfloat16"}
MEMORY_NOTES = {
    "peak": "the provider's representation plus the peak allocated above the inputs during the "
            "call (torch.cuda.max_memory_allocated)",
    "rss": "the provider's representation (computed) plus its measured working memory: the peak "
           "RSS of the timed calls above the RSS before them (VmHWM, reset through /proc/self/clear_refs)",
    "evaluate_all_users": "score buffer the evaluator holds at once",
    "train_step": "adjacency representation (embeddings, weights and Adam state come on top)",
    "repr": "adjacency representation the provider works from (for gather_scatter with the "
            "materialised nnz×d message tensor)"}


# --------------------------------------------------------------------------- formatting
def fmt_time(seconds) -> str:
    if seconds is None:
        return "–"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms" if seconds < 0.1 else f"{seconds * 1e3:.0f} ms"
    return f"{seconds * 1e6:.0f} µs"


def fmt_count(n) -> str:
    return f"{int(n):,}" if n is not None else "–"


def table(header, rows) -> list:
    return ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"] + [
        "| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def geomean(values) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


# --------------------------------------------------------------------------- tables
def load_suite_json(path: Path):
    """``(records, meta)`` of a pytest-benchmark json: one dict per result, run or not run."""
    data = json.loads(Path(path).read_text())
    records = []
    for bench in data.get("benchmarks", []):
        info = dict(bench.get("extra_info", {}))
        if "op" not in info:  # not one of ours
            continue
        stats = bench.get("stats") or {}
        seconds = info["do_bench_ms"] / 1e3 if "do_bench_ms" in info else stats.get("median")
        if "gbps" in info and "model_bytes" in info and "do_bench_ms" not in info and seconds:
            info["gbps"] = info["model_bytes"] / seconds / 1e9  # consistent with the shown time
        # representation + the measured working peak (CUDA allocator or CPU RSS); results older
        # than the RSS measurement: + the computed materialised per-edge tensor
        kind = next((k for k in ("peak_mem_bytes", "cpu_peak_rss_bytes", "materialised_bytes")
                     if info.get(k) is not None), None)
        extra = info[kind] if kind else 0
        has_repr = info.get("repr_bytes") is not None
        info.update(seconds=seconds, status="ok",
                    memory=(info.get("repr_bytes") or 0) + extra if (has_repr or extra) else None,
                    memory_kind={"peak_mem_bytes": "peak", "cpu_peak_rss_bytes": "rss"}.get(kind, "repr"))
        records.append(info)
    records += [dict(info, seconds=None, memory=info.get("needs_bytes"), memory_kind="needs")
                for info in data.get("gnn_not_run", [])]
    return records, {"machine": data.get("machine_info", {}), "config": data.get("gnn_config", {}),
                     "datetime": data.get("datetime"), "commit": data.get("commit_info", {}),
                     "version": data.get("version")}


def op_tables(op: str, recs: list, parts=("time", "memory", "rss", "gbps")) -> list:
    """Time, memory, whole-case RSS and GB/s tables of one operation (those that apply)."""
    providers = sorted({r["provider"] for r in recs}, key=provider_key)
    sizes = {}
    for r in sorted(recs, key=size_key):
        sizes.setdefault(r["size"], r)
    cell = {(r["size"], r["provider"]): r for r in recs}
    graph_op = op not in NON_GRAPH_OPS
    rows = {key: [] for key in ("time", "memory", "rss", "gbps")}
    for size, first in sizes.items():
        head = [size] + [fmt_count(first.get(k)) for k in ("N", "nnz")] if graph_op else [
            size, fmt_count(first.get("n_users")), fmt_count(first.get("n_items")),
            fmt_count((first.get("nnz") or 0) // 2)]
        row = {key: list(head) for key in rows}
        for p in providers:
            r = cell.get((size, p))
            if r is None:
                values = ["–"] * 4
            elif not ok(r):
                status = r["status"]
                if status.startswith("error:"):
                    status = f"error ({status.split(':')[1].strip()})"
                values = [status, f"{fmt_bytes(r['memory'])} (not run)", "not run", "–"]
            else:
                values = [fmt_time(r["seconds"]), fmt_bytes(r["memory"]),
                          fmt_bytes(r.get("cpu_case_rss_bytes")),
                          f"{r['gbps']:.1f}" if r.get("gbps") is not None else "–"]
            for key, value in zip(rows, values):
                row[key].append(value)
        for key in rows:
            rows[key].append(row[key])
    header = (["size", "N", "nnz"] if graph_op else ["size", "users", "items", "train pairs"]) + providers
    kinds = {r["memory_kind"] for r in recs if ok(r)}
    note = MEMORY_NOTES["peak" if "peak" in kinds else "rss" if "rss" in kinds else
                        op if op in MEMORY_NOTES else "repr"]
    titles = {
        "time": "**Time** (median per call)",
        "memory": f"**Memory**: {note}",
        "rss": "**Measured peak RSS of the whole case** above the RSS before it (VmHWM, reset "
               "before each case): the representation as built, the warm-up call (with one-time "
               "costs such as library pages on first use) and the working memory",
        "gbps": "**Achieved GB/s** by the byte model of docs/DESIGN.md §4, `4(N+1) + 8·nnz + G + "
                "N·d·b` with the best case G = N·d·b (each row of E read once); the worst case "
                "G = nnz·d·b would give higher figures"}
    shown = {"time": True, "memory": op not in ("negative_sampling", "load_ratings"),
             "rss": any(r.get("cpu_case_rss_bytes") is not None for r in recs), "gbps": op == "spmm"}
    shown["rss"] &= shown["memory"]
    lines = []
    for key in parts:
        if shown[key]:
            lines += [titles[key], ""] + table(header, rows[key]) + [""]
    return lines


def suite_markdown(records: list, meta: dict, plot_note: str) -> str:
    cfg, machine = meta["config"], meta["machine"]
    dtypes = sorted({r.get("dtype", "?") for r in records if r.get("op") not in
                     ("negative_sampling", "load_ratings")})
    lines = ["# Benchmark report", "",
             f"- generated from a pytest-benchmark json of {meta.get('datetime') or '?'} "
             f"(pytest-benchmark {meta.get('version') or '?'})",
             f"- device: {', '.join(sorted({r.get('device', '?') for r in records}))}; CPU: "
             f"{machine.get('cpu', {}).get('brand_raw', '?')}, Python {machine.get('python_version', '?')}",
             f"- torch {cfg.get('torch', '?')}, {cfg.get('threads', '?')} threads, dtype "
             f"{', '.join(dtypes)}, d = {', '.join(str(d) for d in sorted({r.get('d') for r in records if r.get('d')}))}, "
             f"size preset `{cfg.get('sizes', '?')}`",
             f"- dense providers are attempted only within the budget ({cfg.get('cpu_budget_rule', '?')} "
             f"on the CPU, 80 % of free memory on CUDA); beyond it the needed bytes are computed and "
             f"shown as OOM", f"- {plot_note}"]
    if cfg.get("loadavg"):
        lines.append(f"- 1-minute load average at the start / end of the run: {cfg['loadavg']}")
    commit = meta.get("commit") or {}
    if commit.get("id"):
        lines.append(f"- commit {commit['id'][:10]}{' (dirty tree)' if commit.get('dirty') else ''}")
    by_op = defaultdict(list)
    for r in records:
        by_op[r["op"]].append(r)
    lines.append("")
    for op in [op for op in OP_TITLES if op in by_op] + sorted(set(by_op) - set(OP_TITLES)):
        lines += [f"## {OP_TITLES.get(op, op)}", ""] + op_tables(op, by_op[op])
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- device run
def _load(folder: Path, name: str):
    path = Path(folder) / name
    return json.loads(path.read_text()) if path.is_file() else None


def _records(data) -> list:
    return [dict({"seconds": None, "memory": None, "memory_kind": "peak"}, **r)
            for r in (data or {}).get("records", [])]


def _last_line(stage: dict) -> str:
    return ((stage.get("tail") or [stage.get("why") or ""])[-1]).replace("|", "/")[:120]


def machine_lines(device: dict) -> list:
    m = device.get("machine", {})
    lines = [f"- device run of {device.get('started', '?')}"
             + (" (DRY RUN on the CPU: sizes are tiny, times mean nothing)" if device.get("dry_run") else ""),
             f"- GPU: {m.get('gpu', 'none')} (compute capability {m.get('capability', '–')}, "
             f"{fmt_bytes(m.get('gpu_memory_bytes'))}, {m.get('multiprocessors', '–')} SMs); "
             f"host: {m.get('cpu_count', '?')} cores",
             f"- python {m.get('python', '?')}, torch {m.get('torch', '?')} (CUDA {m.get('torch_cuda', '–')}), "
             f"triton {m.get('triton', '?')}, numpy {m.get('numpy', '?')}, torch_geometric "
             f"{m.get('torch_geometric') or 'not installed'}"]
    if m.get("nvidia_smi"):
        lines.append("- nvidia-smi: " + m["nvidia_smi"].replace("\n", " / "))
    rows = [[s["name"], s["status"], s.get("seconds", "–"), s.get("limit_s", "–"),
             f"`{_last_line(s)}`" if _last_line(s) else ""] for s in device.get("stages", [])]
    return lines + [""] + table(["stage", "status", "seconds", "limit", "last line"], rows) + [""]


def kernel_lines(data: dict) -> list:
    records = _records(data)
    lines = [f"Copy bandwidth measured in the same run: **{data.get('meta', {}).get('copy_gbps', 0):.0f} "
             f"GB/s** (device-to-device, read + write). Times: `triton.testing.do_bench` medians; "
             f"memory: representation + peak allocated above the inputs during one call; every "
             f"result checked against torch's fp32 composition (`rel err` = ‖out − ref‖ / ‖ref‖, "
             f"gradients included).", ""]
    for (op, dtype), title in KERNEL_SECTIONS.items():
        recs = [r for r in records if r["op"] == op and r["dtype"] == dtype]
        errs = defaultdict(list)
        for r in recs:
            if r.get("rel_err") is not None:
                errs[r["provider"]].append(r["rel_err"])
        if recs:
            lines += [f"### {title}", ""] + op_tables(op, recs)
        if errs:
            lines += ["Largest rel err per provider: " + ", ".join(
                f"{p} {max(errs[p]):.1e}" for p in sorted(errs, key=provider_key)), ""]
    errors = [r for r in records if str(r.get("status")).startswith("error")]
    if errors:
        lines += ["**Errors** (recorded, the run went on): " + "; ".join(
            f"{r['op']} {r['dtype']} {r['provider']} {r['size']}: `{r['status'][7:]}`" for r in errors), ""]
    failed = [r for r in records if r.get("check_ok") is False]
    lines += [f"**Accuracy checks**: {len(failed)} of {sum('check_ok' in r for r in records)} outside "
              f"tolerance" + (": " + "; ".join(f"{r['op']} {r['dtype']} {r['provider']} {r['size']} "
                                               f"({r['rel_err']:.1e})" for r in failed) if failed else "."), ""]
    return lines + sweep_lines(records)


def sweep_lines(records: list) -> list:
    """The long-row threshold sweeps (fastest T by geometric mean) and NGCF's S saved vs recomputed."""
    lines = []
    for op, what in (("spmm_threshold", "SpMM forward"), ("ngcf_threshold", "NGCF layer fwd + bwd")):
        recs = [r for r in records if r["op"] == op and ok(r)]
        ts = sorted({r["provider"] for r in recs}, key=lambda t: (t == "T=off", int(t[2:]) if t[2:].isdigit() else 0))
        sizes = list(dict.fromkeys(r["size"] for r in recs))
        cell = {(r["size"], r["provider"]): r["seconds"] for r in recs}
        degree = {r["size"]: r["max_degree"] for r in recs}
        if recs:
            lines += [f"### Long-row threshold sweep: {what}, float32", ""] + table(
                ["size", "max row degree"] + ts,
                [[s, f"{degree[s]:,}"] + [fmt_time(cell.get((s, t))) for t in ts] for s in sizes]) + [""]
        complete = [t for t in ts if all((s, t) in cell for s in sizes)]
        if complete:
            best = min(complete, key=lambda t: geomean([cell[(s, t)] for s in sizes]))
            lines += [f"Fastest over all sizes (geometric mean of the times): **{best}**.", ""]
    pairs = defaultdict(dict)
    for r in records:
        if r["op"] == "ngcf_layer_fwd_bwd" and r["provider"].startswith("ours_fused (") and ok(r):
            pairs[(r["size"], r["dtype"])][r["provider"]] = r
    pairs = [(p["ours_fused (S saved)"], p["ours_fused (S recomputed)"]) for p in pairs.values() if len(p) == 2]
    if pairs:
        time_ratio = geomean([again["seconds"] / saved["seconds"] for saved, again in pairs])
        lines += ["### NGCF layer: S saved vs recomputed in the backward", "",
                  f"Recomputing S takes **{time_ratio:.2f}×** the time of saving it (geometric mean "
                  f"over {len(pairs)} sizes and dtypes; both columns in the NGCF tables above, whose "
                  f"memory rows show the N×d S buffer it saves).", ""]
    return lines


def epoch_lines(data: dict) -> list:
    rows = [[r["dataset"], r["provider"], fmt_time(r["s_per_epoch"]), f"{r['epochs_per_s']:.2f}",
             fmt_bytes(r.get("peak_mem_bytes")), f"{r['n_train']:,}", "ok"] if r.get("status") == "ok"
            else [r.get("dataset"), r.get("provider"), "–", "–", "–", "–", r.get("status")]
            for r in data.get("records", [])]
    return ["Whole epochs (sampling included, evaluation excluded) after a few warm-up steps; "
            "d = 64, 3 layers, batch 2048, the trainer's defaults; PyG's LightGCN as in its own "
            "example (bench/epochs.py).", ""] + table(
        ["dataset", "provider", "s/epoch", "epochs/s", "peak memory", "training pairs", "status"], rows) + [""]


def memory_lines(data: dict) -> list:
    records, lines = _records(data), ["Representation + peak allocated above the inputs during one "
                                      "call, float32, d = 64; a dense Â over the budget is not built "
                                      "(its need N²·4 bytes is shown).", ""]
    for op, title in (("spmm", "SpMM"), ("ngcf_layer_fwd_bwd", "NGCF layer fwd + bwd")):
        recs = [r for r in records if r["op"] == op]
        if recs:
            lines += [f"#### {title}", ""] + op_tables(op, recs, parts=("memory",))[2:]
    return lines


def _num(v) -> str:
    return f"{v:.4f}" if isinstance(v, (int, float)) else "–"


def curve_lines(data: dict) -> list:
    paper = data.get("paper") or {}
    lines = [f"`python3 -m gnn.reproduce {data.get('config_path', 'configs/gowalla/lightgcn.json')} "
             f"--device {data.get('device_type', 'cuda')} --epochs {data.get('epochs')}`: "
             f"{data.get('epochs')} epochs ({fmt_time(data.get('sec_per_epoch'))} per epoch, sampling "
             f"`{data.get('config', {}).get('sampling', '?')}`); test recall@20 "
             f"**{_num(data.get('recall@20'))}**, NDCG@20 **{_num(data.get('ndcg@20'))}** at the last "
             f"evaluation (paper after 1000 epochs: {_num(paper.get('recall@20'))} / "
             f"{_num(paper.get('ndcg@20'))}).", ""]
    evals = [h for h in data.get("history", []) if "test_recall@20" in h]
    if evals:
        lines += table(["epoch", "loss", "recall@20", "ndcg@20"], [
            [h["epoch"], _num(h.get("loss")), _num(h["test_recall@20"]), _num(h.get("test_ndcg@20"))]
            for h in evals]) + [""]
    return lines


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
        elif name == "memory.png" and _load(folder, "memory.json"):
            # the stage ran out of time before its plot: draw it from the sizes it finished
            if plot(_records(_load(folder, "memory.json")), out / name, *MEMORY_PLOT):
                images.append(out / name)
    for name, title, render in (("kernels.json", "Kernels", kernel_lines),
                                ("epochs.json", "Training epochs", epoch_lines),
                                ("memory.json", "Memory against graph size", memory_lines),
                                ("curve.json", "Gowalla LightGCN learning curve", curve_lines)):
        data = _load(folder, name)
        lines += [f"## {title}", ""] + (render(data) if data else [f"Not measured: no {name} (see the stages).", ""])
    return "\n".join(lines).rstrip() + "\n", images


MEMORY_PLOT = (["spmm", "ngcf_layer_fwd_bwd"], {"spmm": "SpMM Â·E (fp32, d = 64)",
                                                "ngcf_layer_fwd_bwd": "NGCF layer fwd + bwd"},
               "representation + peak above inputs [bytes]", False)


def _find(records, **match):
    return next((r for r in records if ok(r) and all(r.get(k) == v for k, v in match.items())), None)


def _versus(a, b, memory=True) -> str:
    if not (a and b):
        return ""
    text = f"{fmt_time(a['seconds'])} vs {fmt_time(b['seconds'])} (**{b['seconds'] / a['seconds']:.2f}×**)"
    if memory and a.get("peak_mem_bytes") and b.get("peak_mem_bytes"):
        text += f", peak memory {fmt_bytes(a['memory'])} vs {fmt_bytes(b['memory'])}"
    return text


def headlines(folder: Path) -> str:
    """The few numbers of a device run that the README quotes, each read off its files."""
    device, m = _load(folder, "device.json"), _load(folder, "device.json").get("machine", {})
    lines = [f"Device run of {device.get('started', '?')} on {m.get('gpu', 'no GPU')} (torch "
             f"{m.get('torch', '?')}, triton {m.get('triton', '?')}); full tables in "
             f"[docs/BENCHMARKS.md](docs/BENCHMARKS.md#gpu-results-the-device-run)."
             + (" **Dry run on the CPU: the numbers mean nothing.**" if device.get("dry_run") else ""), ""]
    tests = next((s for s in device.get("stages", []) if s["name"] == "tests"), None)
    if tests:
        lines.append(f"- Tests on CUDA: {tests['status']}, `{(tests.get('tail') or ['?'])[-1]}`")
    kernels = _records(_load(folder, "kernels.json"))
    for size in dict.fromkeys(r["size"] for r in kernels):
        first = next(r for r in kernels if r["size"] == size)
        k = dict(size=size, op="spmm", provider="ours")
        parts = [("SpMM fp32, ours vs cuSPARSE", _versus(_find(kernels, **k, dtype="float32"), _find(
                     kernels, **dict(k, provider="torch_csr"), dtype="float32"))),
                 ("SpMM bf16 vs fp32 (ours)", _versus(_find(kernels, **k, dtype="bfloat16"),
                                                      _find(kernels, **k, dtype="float32"), False)),
                 ("NGCF layer fwd + bwd fp32, fused vs torch.sparse + torch ops", _versus(*(
                     _find(kernels, size=size, op="ngcf_layer_fwd_bwd", dtype="float32", provider=p)
                     for p in ("ours_fused (S saved)", "torch_unfused"))))]
        shown = "; ".join(f"{what}: {text}" for what, text in parts if text)
        if shown:
            lines.append(f"- {size} (N = {first['N']:,}, nnz = {first['nnz']:,}): {shown}")
    gowalla = [r for r in _records(_load(folder, "epochs.json")) if r.get("dataset") == "gowalla" and ok(r)]
    if gowalla:
        lines.append("- Gowalla training, epochs/s (d = 64, 3 layers, batch 2048): " + ", ".join(
            f"{r['provider']} {r['epochs_per_s']:.2f}" for r in gowalla))
    memory = _records(_load(folder, "memory.json"))
    largest = max((r for r in memory if r["provider"] == "ours" and ok(r)), key=lambda r: r["N"], default=None)
    if largest:
        dense = _find(memory, op="spmm", provider="dense", size=largest["size"]) or next(
            (r for r in memory if r["op"] == "spmm" and r["provider"] == "dense" and r["size"] == largest["size"]), None)
        lines.append(f"- Memory of one SpMM at N = {largest['N']:,}: ours {fmt_bytes(largest['memory'])}"
                     + (f", a dense Â {fmt_bytes(dense['memory'])}{'' if ok(dense) else ' (computed: not built)'}"
                        if dense else ""))
    c = _load(folder, "curve.json")
    if c:
        paper = c.get("paper") or {}
        lines.append(f"- Gowalla LightGCN, {c.get('epochs')} epochs ({c.get('device', '?')}): test recall@20 "
                     f"{c.get('recall@20', 0):.4f}, NDCG@20 {c.get('ndcg@20', 0):.4f} ({fmt_time(c.get('sec_per_epoch'))} "
                     f"per epoch; the paper's 1000 epochs: {paper.get('recall@20', '–')} / {paper.get('ndcg@20', '–')})")
    return "# GPU headlines\n\n" + "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- docs
def update_docs(doc: Path, section: str, report: str, images=()) -> None:
    """Replace the marked section of ``doc`` with ``report`` (title dropped, headings one level
    down, links to ``images`` relative to ``doc``, each image shown at the end)."""
    start, end = f"<!-- bench:{section}:start -->", f"<!-- bench:{section}:end -->"
    text = doc.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"bench.report: {doc} has no {start} ... {end} markers")
    body = report.split("\n", 1)[1].lstrip("\n")
    body = "\n".join("#" + line if line.startswith("#") else line for line in body.splitlines())
    shown = []
    for png in images:
        rel = os.path.relpath(png, doc.parent)
        body = body.replace(f"]({png.name})", f"]({rel})")
        shown.append(f"![{png.stem}]({rel})")
    if shown:
        body = body.rstrip() + "\n\n" + "\n".join(shown) + "\n"
    head, rest = text.split(start, 1)
    doc.write_text(f"{head}{start}\n{body.rstrip()}\n{end}{rest.split(end, 1)[1]}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", type=Path, help="a pytest --benchmark-json file, or a device run's folder")
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
        note = (f"plot: [{png.name}]({png.name})" if made else "plot not requested (--no-plot)"
                if args.no_plot else "matplotlib is not installed, so only this table was written "
                "(pip install 'graphcf-triton[plot]' for profile.png)")
        report, images = suite_markdown(records, meta, note), [png] if made else []
    (args.out / "report.md").write_text(report)
    print(f"wrote {args.out / 'report.md'}" + "".join(f" and {p}" for p in images))
    for doc in args.update_docs:
        update_docs(doc, args.section, report, images)
        print(f"updated section {args.section!r} of {doc}")
    if args.headlines:
        short = headlines(args.source)
        (args.out / "headlines.md").write_text(short)
        for doc in args.headlines:
            update_docs(doc, args.section, short)
            print(f"updated section {args.section!r} of {doc} with the headlines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
