"""What a reproduction run reports: ours against the paper, and the learning curve (JSON, PNG)."""
from __future__ import annotations

from pathlib import Path

from gnn.reproduction.config import MAIN


def compare(config: dict, summary: dict) -> dict:
    """Ours vs the paper for recall@20 / NDCG@20, and the GPU targets where they apply."""
    paper = config["paper"]
    out = {}
    for key in MAIN:
        ours, theirs = summary.get(key), paper.get(key)
        row = {"ours": ours, "paper": theirs}
        if ours is not None and theirs:
            row.update(diff=ours - theirs, relative=ours / theirs - 1, reached=ours >= theirs)
        out[key] = row
    target = config.get("target", {})
    if "max_seconds" in target:
        seconds = summary.get("estimated_full_run_seconds", summary["wall_seconds"])
        out["within_max_seconds"] = seconds <= target["max_seconds"]
    if "max_peak_rss_mb" in target and summary.get("peak_rss_mb") is not None:
        out["within_max_peak_rss_mb"] = summary["peak_rss_mb"] <= target["max_peak_rss_mb"]
    if "min_epochs_per_second" in target and summary.get("epochs_per_second"):
        out["meets_epochs_per_second"] = summary["epochs_per_second"] >= target["min_epochs_per_second"]
    return out


def format_comparison(config: dict, summary: dict) -> str:
    cmp = summary["comparison"]
    if summary.get("probe"):
        done = f"probe of {summary['probe_batches']} batches"
    elif summary.get("epochs") is None:
        done = f"fit {summary.get('fit_seconds', 0):.1f} s, evaluation {summary['eval_seconds']:.1f} s"
    else:
        done = f"{summary['epochs']} epochs"
    lines = [f"{config['name']} ({summary['model']}) on {summary['dataset']}, "
             f"{summary['device']}: {done}, wall {summary['wall_seconds']:.1f} s"]
    if summary.get("peak_rss_mb") is not None:
        lines[0] += (f" (CPU {summary['cpu_seconds']:.1f} s, peak RSS "
                     f"{summary['peak_rss_mb']:.0f} MB)")
    if summary.get("sec_per_epoch"):
        lines[0] += (f", {summary['sec_per_epoch']:.3g} s/epoch "
                     f"({summary['epochs_per_second']:.3g} epochs/s)")
    lines.append(f"  {'metric':<10} {'ours':>8} {'paper':>8} {'diff':>9}")
    for key in MAIN:
        row = cmp[key]
        ours = "-" if row["ours"] is None else f"{row['ours']:.4f}"
        paper = "-" if row["paper"] is None else f"{row['paper']:.4f}"
        diff = (f"{row['diff']:+.4f} ({100 * row['relative']:+.1f}%)" if "diff" in row else "")
        lines.append(f"  {key:<10} {ours:>8} {paper:>8} {diff}")
    if summary.get("partial"):
        lines.append(f"  note: {summary['partial']}")
    target = config.get("target", {})
    if "max_seconds" in target:
        what = "estimated full run" if "estimated_full_run_seconds" in summary else "wall"
        lines.append(f"  target: {what} <= {target['max_seconds']:.0f} s: "
                     f"{'yes' if cmp['within_max_seconds'] else 'no'}")
    if "within_max_peak_rss_mb" in cmp:
        lines.append(f"  target: peak RSS <= {target['max_peak_rss_mb']:.0f} MB: "
                     f"{'yes' if cmp['within_max_peak_rss_mb'] else 'no'}")
    if "meets_epochs_per_second" in cmp:
        lines.append(f"  target: >= {target['min_epochs_per_second']} epochs/s: "
                     f"{'yes' if cmp['meets_epochs_per_second'] else 'no'}")
    return "\n".join(lines)


def learning_curve(summary: dict) -> dict:
    """Columnar curve: loss and seconds per epoch, test metrics at each evaluation."""
    history = summary.get("history", [])
    evals = [h for h in history if f"test_{MAIN[0]}" in h]
    metric_keys = sorted({k[5:] for h in evals for k in h if k.startswith("test_")})
    return {
        "name": summary["config_name"], "model": summary["model"], "dataset": summary["dataset"],
        "device": summary["device"],
        "epoch": [h["epoch"] for h in history],
        "loss": [h["loss"] for h in history],
        "seconds": [h["seconds"] for h in history],
        "eval_epoch": [h["epoch"] for h in evals],
        **{k: [h[f"test_{k}"] for h in evals] for k in metric_keys},
        "paper": {k: summary["paper"].get(k) for k in MAIN},
    }


def plot_curve(curve: dict, path: Path) -> bool:
    """Write the curve as a PNG; False (nothing written) when matplotlib is not importable."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(curve["epoch"], curve["loss"], color="tab:gray",
                 marker="." if len(curve["epoch"]) <= 50 else None)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("BPR loss (with L2)")
    ax_loss.set_title("training loss")
    for key, color in zip(MAIN, ("tab:blue", "tab:orange")):
        if key in curve:
            ax_metric.plot(curve["eval_epoch"], curve[key], marker=".", color=color, label=f"ours {key}")
        if curve["paper"].get(key) is not None:
            ax_metric.axhline(curve["paper"][key], color=color, linestyle="--",
                              label=f"paper {key} {curve['paper'][key]:.4f}")
    ax_metric.set_xlabel("epoch")
    ax_metric.set_title("test (full ranking, training items excluded)")
    ax_metric.legend(fontsize=8)
    fig.suptitle(f"{curve['name']} on {curve['dataset']} ({curve['device']})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
