"""The benchmarks' one figure: time and memory against N, log-log, one line per provider (the
suite's profile.png, written by bench/report.py; the device run's memory.png, drawn by
bench/device_run.py from its kernels.json), the records it is drawn from (``load_suite_json``)
and the order of providers and sizes that the report's tables share with it. Imports neither
torch nor the library: the device run draws in its own process.

Power-law sizes of the default nnz draw the lines, the other graphs are markers, and a provider
that was not attempted (over the memory budget) shows its computed need as a hollow marker on a
dashed line.
"""
from __future__ import annotations

import json
from pathlib import Path

PROVIDER_ORDER = ["ours", "ours_fused", "ours_fused (S recomputed)",
                  "ours_spmm+torch", "ours_chunked", "torch_csr", "torch_unfused", "dense",
                  "dense_scores", "gather_scatter", "scipy", "NGCF", "NGCF [torch backend]",
                  "LightGCN", "LightGCN [torch backend]", "MF", "rank", "rejection",
                  "gnn.load_dataset", "plain_parse"]
MEMORY_KINDS = {"peak_mem_bytes": "peak", "cpu_peak_rss_bytes": "rss"}


def load_suite_json(path: Path):
    """``(records, meta)`` of a pytest-benchmark json: one dict per result, run or not run
    (its extra_info with ``seconds``, ``memory``, ``memory_kind`` and ``status``); ``meta``
    holds the machine, the suite's config and the tests that failed."""
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
                     "version": data.get("version"), "failed": data.get("gnn_failed", [])}


def provider_key(p: str):
    return (PROVIDER_ORDER.index(p) if p in PROVIDER_ORDER else len(PROVIDER_ORDER), p)


def is_powerlaw(rec: dict) -> bool:
    """A power-law graph of the default nnz = 20·N (one line; others, nnz given, are markers)."""
    return str(rec["size"]).startswith("powerlaw") and "-nnz" not in str(rec["size"])


def size_key(rec: dict):
    """Real datasets first, then the power-law graphs by N and nnz."""
    return (str(rec["size"]).startswith("powerlaw"), rec.get("N") or 0, rec.get("nnz") or 0,
            rec["size"])


def ok(rec: dict) -> bool:
    return rec.get("status", "ok") == "ok"


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

    def draw(ax, recs, key, style, **kwargs):  # each record's ``key`` against its N
        if ax is not None and recs:
            ax.plot([r["N"] for r in recs], [r[key] for r in recs], style, **kwargs)

    for row, op in enumerate(ops):
        ax_t, ax_m = (axes[row][0], axes[row][1]) if time_axis else (None, axes[row][0])
        recs = [r for r in records if r["op"] == op]
        for p in sorted({r["provider"] for r in recs}, key=provider_key):
            mine = sorted((r for r in recs if r["provider"] == p), key=size_key)
            curve, color = [r for r in mine if is_powerlaw(r)], colors[p]
            ran = [r for r in curve if r.get("memory") and ok(r)]
            oom = [r for r in curve if r.get("memory") and not ok(r)]
            draw(ax_t, [r for r in curve if ok(r) and r.get("seconds")], "seconds", "o-",
                 color=color, label=p)
            draw(ax_m, ran, "memory", "o-", color=color, label=p)
            if oom:  # the computed need of what was not run: dashed on from the last run, hollow
                draw(ax_m, ran[-1:] + oom, "memory", "--", color=color, alpha=0.7)
                draw(ax_m, oom, "memory", "o", mfc="none", color=color,
                     label=f"{p} (not run, computed)")
            for r in (r for r in mine if not is_powerlaw(r)):
                marker = markers.setdefault(r["size"], "*^sDv"[len(markers) % 5])
                draw(ax_t, [r] if ok(r) and r.get("seconds") else [], "seconds", marker,
                     color=color, ms=9, alpha=0.8)
                draw(ax_m, [r] if r.get("memory") else [], "memory", marker, color=color, ms=9,
                     alpha=0.8, mfc=None if ok(r) else "none")
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


def memory_plot(records: list, path: Path) -> bool:
    """The device run's memory.png: the memory of SpMM and the NGCF layer against N, float32."""
    return plot([r for r in records if r["dtype"] == "float32"], path,
                ["spmm", "ngcf_layer_fwd_bwd"], {"spmm": "SpMM Â·E (fp32, d = 64)",
                                                 "ngcf_layer_fwd_bwd": "NGCF layer fwd + bwd"},
                "representation + peak above inputs [bytes]", time_axis=False)
