"""The memory profile plot: time and memory against N, log-log, one line per provider.

Used by ``python -m bench.report`` (pytest-benchmark results) and ``python -m bench.memory_profile``
(the device run's memory sweep); both pass the same records (dicts with op, provider, size, N,
seconds, memory, status). Power-law sizes draw the lines, real datasets are markers, and a
provider that was not attempted (over the memory budget) shows its computed need as a hollow
marker on a dashed line, so the gap to the dense adjacency stays visible.
"""
from __future__ import annotations

from pathlib import Path

PROVIDER_ORDER = ["ours", "ours_fused", "ours_fused (S saved)", "ours_fused (S recomputed)",
                  "ours_spmm+torch", "ours_chunked", "torch_csr",
                  "torch_unfused", "dense", "dense_scores", "gather_scatter", "scipy",
                  "NGCF", "NGCF [torch backend]", "LightGCN", "LightGCN [torch backend]", "MF",
                  "rank", "rejection", "gnn.load_dataset", "plain_parse"]


def provider_key(p: str):
    return (PROVIDER_ORDER.index(p) if p in PROVIDER_ORDER else len(PROVIDER_ORDER), p)


def is_powerlaw(rec: dict) -> bool:
    return str(rec["size"]).startswith("powerlaw")


def size_key(rec: dict):
    return (1 if is_powerlaw(rec) else 0, rec.get("N") or 0, rec.get("nnz") or 0, rec["size"])


def _ok(rec: dict) -> bool:
    return rec.get("status", "ok") == "ok"


def plot(records: list, path: Path, ops: list, titles: dict, memory_label: str = "bytes",
         time_axis: bool = True) -> bool:
    """Write the figure for ``ops`` (one row each); False when matplotlib is missing or no op has
    records."""
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
    markers = {}
    cols = 2 if time_axis else 1
    fig, axes = plt.subplots(len(ops), cols, figsize=(6 * cols, 3.6 * len(ops)), squeeze=False)
    for row, op in enumerate(ops):
        recs = [r for r in records if r["op"] == op]
        ax_t, ax_m = (axes[row][0], axes[row][1]) if time_axis else (None, axes[row][0])
        for p in sorted({r["provider"] for r in recs}, key=provider_key):
            mine = sorted((r for r in recs if r["provider"] == p), key=size_key)
            _draw_provider(ax_t, ax_m, mine, colors[p], p, markers)
        for ax, ylabel in ((ax_t, "time per call [s]"), (ax_m, memory_label)):
            if ax is None:
                continue
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("N (nodes)")
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
        if ax_t is not None:
            ax_t.set_title(f"{titles.get(op, op)}: time")
        ax_m.set_title(f"{titles.get(op, op)}: memory")
    if markers:
        note = ", ".join(f"{m} {name}" for name, m in markers.items())
        fig.text(0.5, 0.002, f"lines: power-law graphs; markers: {note}", ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.015, 1, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _draw_provider(ax_t, ax_m, mine, color, label, markers) -> None:
    curve = [r for r in mine if is_powerlaw(r)]
    real = [r for r in mine if not is_powerlaw(r)]
    timed = [r for r in curve if _ok(r) and r.get("seconds")]
    if ax_t is not None and timed:
        ax_t.plot([r["N"] for r in timed], [r["seconds"] for r in timed], "o-", color=color,
                  label=label)
    mem = [r for r in curve if r.get("memory")]
    ran = [r for r in mem if _ok(r)]
    if ran:
        ax_m.plot([r["N"] for r in ran], [r["memory"] for r in ran], "o-", color=color, label=label)
    oom = [r for r in mem if not _ok(r)]
    if oom:  # computed need of a provider that was not attempted: hollow, dashed
        joined = ran[-1:] + oom
        ax_m.plot([r["N"] for r in joined], [r["memory"] for r in joined], "--", color=color,
                  alpha=0.7)
        ax_m.plot([r["N"] for r in oom], [r["memory"] for r in oom], "o", mfc="none",
                  color=color, label=f"{label} (not run, computed)")
    for r in real:
        marker = markers.setdefault(r["size"], "*^sDv"[len(markers) % 5])
        if ax_t is not None and _ok(r) and r.get("seconds"):
            ax_t.plot([r["N"]], [r["seconds"]], marker, color=color, ms=9, alpha=0.8)
        if r.get("memory"):
            ax_m.plot([r["N"]], [r["memory"]], marker, color=color, ms=9, alpha=0.8,
                      mfc=None if _ok(r) else "none")
