"""The per-operation tables of the report (sizes as rows, providers as columns: time, static
estimate, memory, whole-case RSS, GB/s) and its one plot (time and memory against N, log-log, one
line per provider), with the names and order of the operations and providers they share.

Power-law sizes draw the lines, real datasets are markers, and a provider that was not attempted
(over the memory budget) shows its computed need as a hollow marker on a dashed line. Used by
bench/report.py and the device run's memory stage (bench/kernels.py --memory).
"""
from __future__ import annotations

from pathlib import Path

from bench.measure import fmt_bytes, fmt_count, fmt_time, pivot, table

OP_TITLES = {"spmm": "SpMM  Y = Â·E", "spmm_fwd_bwd": "SpMM forward + backward (dE = Âᵀ dY)",
             "ngcf_layer_fwd": "NGCF layer, forward (no_grad)",
             "ngcf_layer_fwd_bwd": "NGCF layer, forward + backward",
             "train_step": "One training step (propagation, BPR, backward, Adam)",
             "evaluate_all_users": "Full-ranking evaluation of all users (K = 20)",
             "negative_sampling": "Negative sampling, one epoch", "load_ratings": "Loading ratings"}
PLOTTED_OPS = ["spmm", "ngcf_layer_fwd", "ngcf_layer_fwd_bwd", "train_step"]
PROVIDER_ORDER = ["ours", "ours_fused", "ours_fused (S saved)", "ours_fused (S recomputed)",
                  "ours_spmm+torch", "ours_chunked", "torch_csr", "torch_unfused", "dense",
                  "dense_scores", "gather_scatter", "scipy", "NGCF", "NGCF [torch backend]",
                  "LightGCN", "LightGCN [torch backend]", "MF", "rank", "rejection",
                  "gnn.load_dataset", "plain_parse"]

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
    "train_step": "**Memory**: adjacency representation (embeddings, weights and Adam state come "
                  "on top)",
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

#: ``plot`` arguments of the memory-against-N figure (the device run's memory stage)
MEMORY_PLOT = (["spmm", "ngcf_layer_fwd_bwd"], {"spmm": "SpMM Â·E (fp32, d = 64)",
                                                "ngcf_layer_fwd_bwd": "NGCF layer fwd + bwd"},
               "representation + peak above inputs [bytes]", False)


def provider_key(p: str):
    return (PROVIDER_ORDER.index(p) if p in PROVIDER_ORDER else len(PROVIDER_ORDER), p)


def is_powerlaw(rec: dict) -> bool:
    return str(rec["size"]).startswith("powerlaw")


def size_key(rec: dict):
    return (is_powerlaw(rec), rec.get("N") or 0, rec.get("nnz") or 0, rec["size"])


def ok(rec: dict) -> bool:
    return rec.get("status", "ok") == "ok"


def us(v) -> str:
    return f"{v:.1f}" if v >= 10 else f"{v:.3g}"


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
        f"{us(est)}–{us(c['static_serial_us'])} µs ({c['seconds'] * 1e6 / est:.2f}×)"
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
        lines += [TITLES[memory if key == "memory" else key], ""] + table(header + providers, rows)
        lines.append("")
    return lines


def plot(records: list, path: Path, ops: list, titles: dict, memory_label: str = "bytes",
         time_axis: bool = True) -> bool:
    """Draw ``ops`` (one row each) into ``path``; False without matplotlib or records."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    ops = [op for op in ops if any(r["op"] == op for r in records)]
    if not ops:
        return False
    providers = sorted({r["provider"] for r in records if r["op"] in ops}, key=provider_key)
    colors = {p: plt.get_cmap("tab10")(i % 10) for i, p in enumerate(providers)}
    markers, cols = {}, 2 if time_axis else 1
    fig, axes = plt.subplots(len(ops), cols, figsize=(6 * cols, 3.6 * len(ops)), squeeze=False)
    for row, op in enumerate(ops):
        ax_t, ax_m = (axes[row][0], axes[row][1]) if time_axis else (None, axes[row][0])
        recs = [r for r in records if r["op"] == op]
        for p in sorted({r["provider"] for r in recs}, key=provider_key):
            mine = sorted((r for r in recs if r["provider"] == p), key=size_key)
            curve, color = [r for r in mine if is_powerlaw(r)], colors[p]
            timed = [r for r in curve if ok(r) and r.get("seconds")]
            if ax_t is not None and timed:
                ax_t.plot([r["N"] for r in timed], [r["seconds"] for r in timed], "o-", color=color,
                          label=p)
            ran = [r for r in curve if r.get("memory") and ok(r)]
            oom = [r for r in curve if r.get("memory") and not ok(r)]
            if ran:
                ax_m.plot([r["N"] for r in ran], [r["memory"] for r in ran], "o-", color=color,
                          label=p)
            if oom:
                ax_m.plot([r["N"] for r in ran[-1:] + oom], [r["memory"] for r in ran[-1:] + oom],
                          "--", color=color, alpha=0.7)
                ax_m.plot([r["N"] for r in oom], [r["memory"] for r in oom], "o", mfc="none",
                          color=color, label=f"{p} (not run, computed)")
            for r in (r for r in mine if not is_powerlaw(r)):
                marker = markers.setdefault(r["size"], "*^sDv"[len(markers) % 5])
                if ax_t is not None and ok(r) and r.get("seconds"):
                    ax_t.plot([r["N"]], [r["seconds"]], marker, color=color, ms=9, alpha=0.8)
                if r.get("memory"):
                    ax_m.plot([r["N"]], [r["memory"]], marker, color=color, ms=9, alpha=0.8,
                              mfc=None if ok(r) else "none")
        for ax, ylabel, what in ((ax_t, "time per call [s]", "time"),
                                 (ax_m, memory_label, "memory")):
            if ax is not None:
                ax.set(xscale="log", yscale="log", xlabel="N (nodes)", ylabel=ylabel,
                       title=f"{titles.get(op, op)}: {what}")
                ax.grid(True, which="both", alpha=0.3)
                ax.legend(fontsize=7)
    if markers:
        note = ", ".join(f"{m} {name}" for name, m in markers.items())
        fig.text(0.5, 0.002, f"lines: power-law graphs; markers: {note}", ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.015, 1, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
