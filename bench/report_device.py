"""A device run's folder (bench/device_run.py) as markdown: ``python -m bench.report FOLDER``.

Reads device.json, kernels.json, epochs.json, memory.json (+ memory.png) and curve.json
(+ curve.png), whichever are there, and writes the tables of docs/BENCHMARKS.md's GPU section:
the machine and each stage's outcome, the kernel tables (time, memory, GB/s, accuracy), the two
sweeps with the defaults they point to, epochs per second next to PyG, the memory profile and
the learning curve. A stage that did not finish shows as such; nothing is invented.
"""
from __future__ import annotations

import json
import math
import shutil
from collections import OrderedDict
from pathlib import Path

from bench.report import fmt_bytes, fmt_time, op_tables, table
from bench.report_plot import provider_key

KERNEL_SECTIONS = OrderedDict([
    (("spmm", "float32"), "SpMM Y = Â·E, float32"),
    (("spmm", "bfloat16"), "SpMM Y = Â·E, bfloat16 (fp32 accumulation)"),
    (("spmm_fwd_bwd", "float32"), "SpMM forward + backward (dE = Âᵀ dY), float32"),
    (("ngcf_layer_fwd_bwd", "float32"), "NGCF layer forward + backward, float32"),
    (("ngcf_layer_fwd_bwd", "bfloat16"), "NGCF layer forward + backward, bfloat16"),
])


def _load(folder: Path, name: str):
    path = folder / name
    return json.loads(path.read_text()) if path.is_file() else None


def _prepare(records: list) -> list:
    for r in records:
        r.setdefault("memory_kind", "peak")
        r.setdefault("seconds", None)
        r.setdefault("memory", None)
    return records


def machine_lines(device: dict) -> list:
    m = device.get("machine", {})
    lines = [f"- device run of {device.get('started', '?')}"
             f"{' (DRY RUN on the CPU: sizes are tiny, times mean nothing)' if device.get('dry_run') else ''}",
             f"- GPU: {m.get('gpu', 'none')} (compute capability {m.get('capability', '–')}, "
             f"{fmt_bytes(m.get('gpu_memory_bytes'))}, {m.get('multiprocessors', '–')} SMs); "
             f"host: {m.get('cpu_count', '?')} cores",
             f"- python {m.get('python', '?')}, torch {m.get('torch', '?')} (CUDA "
             f"{m.get('torch_cuda', '–')}), triton {m.get('triton', '?')}, numpy "
             f"{m.get('numpy', '?')}, torch_geometric {m.get('torch_geometric') or 'not installed'}"]
    if m.get("nvidia_smi"):
        lines.append("- nvidia-smi: " + m["nvidia_smi"].replace("\n", " / "))
    lines += ["", "| stage | status | seconds | limit | last line |", "|---|---|---|---|---|"]
    for s in device.get("stages", []):
        last = (s.get("tail") or [s.get("why", "")])[-1] if (s.get("tail") or s.get("why")) else ""
        last = last.replace("|", "/")[:120]
        lines.append(f"| {s['name']} | {s['status']} | {s.get('seconds', '–')} | "
                     f"{s.get('limit_s', '–')} | `{last}` |" if last else
                     f"| {s['name']} | {s['status']} | {s.get('seconds', '–')} | {s.get('limit_s', '–')} | |")
    return lines + [""]


def kernel_lines(data: dict) -> list:
    records = _prepare(data["records"])
    meta = data.get("meta", {})
    lines = [f"Copy bandwidth measured in the same run: **{meta.get('copy_gbps', 0):.0f} GB/s** "
             f"(device-to-device, read + write). Times: `triton.testing.do_bench` medians; memory: "
             f"representation + peak allocated above the inputs during one call; every result "
             f"checked against torch's fp32 composition (`rel err` = ‖out − ref‖ / ‖ref‖, "
             f"gradients included).", ""]
    for (op, dtype), title in KERNEL_SECTIONS.items():
        recs = [r for r in records if r["op"] == op and r["dtype"] == dtype]
        if recs:
            lines += [f"### {title}", ""] + op_tables(op, recs) + accuracy_lines(recs)
    errors = [r for r in records if str(r.get("status")).startswith("error")]
    if errors:
        lines += ["**Errors** (recorded, the run went on): " + "; ".join(
            f"{r['op']} {r['dtype']} {r['provider']} {r['size']}: `{r['status'][7:]}`"
            for r in errors), ""]
    failed = [r for r in records if r.get("check_ok") is False]
    lines += [f"**Accuracy checks**: {len(failed)} of "
              f"{sum(1 for r in records if 'check_ok' in r)} outside tolerance"
              + (": " + "; ".join(f"{r['op']} {r['dtype']} {r['provider']} {r['size']} "
                                  f"({r['rel_err']:.1e})" for r in failed) if failed else "."), ""]
    return lines + sweep_lines(records)


def accuracy_lines(recs: list) -> list:
    errs = {}
    for r in recs:
        if r.get("rel_err") is not None:
            errs.setdefault(r["provider"], []).append(r["rel_err"])
    if not errs:
        return []
    shown = ", ".join(f"{p} {max(v):.1e}" for p, v in sorted(errs.items(), key=lambda kv: provider_key(kv[0])))
    return [f"Largest rel err per provider: {shown}", ""]


def _geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def sweep_lines(records: list) -> list:
    lines = []
    for op, what in (("spmm_threshold", "SpMM forward"), ("ngcf_threshold", "NGCF layer fwd + bwd")):
        recs = [r for r in records if r["op"] == op and r.get("status") == "ok"]
        if not recs:
            continue
        ts = sorted({r["provider"] for r in recs}, key=lambda t: (t == "T=off", int(t[2:]) if t[2:].isdigit() else 0))
        sizes = list(OrderedDict.fromkeys(r["size"] for r in recs))
        cell = {(r["size"], r["provider"]): r["seconds"] for r in recs}
        rows = [[s, f"{next(r['max_degree'] for r in recs if r['size'] == s):,}"]
                + [fmt_time(cell.get((s, t))) for t in ts] for s in sizes]
        complete = [t for t in ts if all((s, t) in cell for s in sizes)]
        best = min(complete, key=lambda t: _geomean([cell[(s, t)] for s in sizes])) if complete else None
        lines += [f"### Long-row threshold sweep: {what}, float32", ""]
        lines += table(["size", "max row degree"] + ts, rows) + [""]
        if best:
            lines += [f"Fastest over all sizes (geometric mean of the times): **{best}**.", ""]
    recs = [r for r in records if r["op"] == "ngcf_layer_fwd_bwd" and r["provider"].startswith("ours_fused (")
            and r.get("status") == "ok"]
    if recs:
        lines += ["### NGCF layer: S saved vs recomputed in the backward", ""]
        rows = []
        for (size, dtype) in OrderedDict.fromkeys((r["size"], r["dtype"]) for r in recs):
            pair = {r["provider"]: r for r in recs if r["size"] == size and r["dtype"] == dtype}
            saved, again = pair.get("ours_fused (S saved)"), pair.get("ours_fused (S recomputed)")
            if saved and again:
                rows.append([size, dtype, fmt_time(saved["seconds"]), fmt_time(again["seconds"]),
                             f"{again['seconds'] / saved['seconds']:.2f}",
                             fmt_bytes(saved["peak_mem_bytes"]), fmt_bytes(again["peak_mem_bytes"])])
        lines += table(["size", "dtype", "time, S saved", "time, S recomputed", "ratio",
                        "peak, S saved", "peak, S recomputed"], rows) + [""]
        if rows:
            ratio = _geomean([float(r[4]) for r in rows])
            lines += [f"Recomputing S takes **{ratio:.2f}×** the time of saving it (geometric mean "
                      f"over the rows above); it saves the N×d S buffer shown in the peaks.", ""]
    return lines


def epoch_lines(data: dict) -> list:
    rows = []
    for r in data.get("records", []):
        if r.get("status") == "ok":
            rows.append([r["dataset"], r["provider"], fmt_time(r["s_per_epoch"]),
                         f"{r['epochs_per_s']:.2f}", fmt_bytes(r.get("peak_mem_bytes")),
                         f"{r['n_train']:,}", "ok"])
        else:
            rows.append([r.get("dataset"), r.get("provider"), "–", "–", "–", "–", r.get("status")])
    return ["Whole epochs (sampling included, evaluation excluded) after a few warm-up steps; "
            "d = 64, 3 layers, batch 2048, the trainer's defaults; PyG's LightGCN as in its own "
            "example (bench/pyg_lightgcn.py).", ""] + table(
        ["dataset", "provider", "s/epoch", "epochs/s", "peak memory", "training pairs", "status"],
        rows) + [""]


def memory_lines(data: dict) -> list:
    records = _prepare(data["records"])
    lines = ["Representation + peak allocated above the inputs during one call, float32, "
             "d = 64; a dense Â over the budget is not built (its need N²·4 bytes is shown).", ""]
    for op, title in (("spmm", "SpMM"), ("ngcf_layer_fwd_bwd", "NGCF layer fwd + bwd")):
        recs = [r for r in records if r["op"] == op]
        if recs:
            body = op_tables(op, recs)
            start = next(i for i, line in enumerate(body) if line.startswith("**Memory**")) + 2
            end = next((i for i in range(start, len(body)) if body[i].startswith("**")), len(body))
            lines += [f"#### {title}", ""] + body[start:end]
    return lines


def curve_lines(data: dict) -> list:
    cfg = data.get("config", {})
    lines = [f"`python3 -m gnn.reproduce {data.get('config_path', 'configs/gowalla/lightgcn.json')} "
             f"--device {data.get('device_type', 'cuda')} --epochs {data.get('epochs')}`: "
             f"{data.get('epochs')} epochs "
             f"({fmt_time(data.get('sec_per_epoch'))} per epoch, sampling "
             f"`{cfg.get('sampling', '?')}`); test recall@20 **{_num(data.get('recall@20'))}**, "
             f"NDCG@20 **{_num(data.get('ndcg@20'))}** at the last evaluation "
             f"(paper after 1000 epochs: {_num((data.get('paper') or {}).get('recall@20'))} / "
             f"{_num((data.get('paper') or {}).get('ndcg@20'))}).", ""]
    evals = [h for h in data.get("history", []) if "test_recall@20" in h]
    if evals:
        lines += table(["epoch", "loss", "recall@20", "ndcg@20"],
                       [[h["epoch"], _num(h.get("loss")), _num(h["test_recall@20"]),
                         _num(h.get("test_ndcg@20"))] for h in evals]) + [""]
    return lines


def _num(v) -> str:
    return f"{v:.4f}" if isinstance(v, (int, float)) else "–"


def report_device_run(folder: Path, out: Path, plot: bool = True):
    """``(markdown, images)`` of a device run's folder; images are copied next to the report."""
    folder, out = Path(folder), Path(out)
    device = _load(folder, "device.json")
    if device is None:
        raise SystemExit(f"bench.report: {folder} has no device.json (not a device run's folder)")
    lines = ["# GPU results (device run)", ""] + machine_lines(device)
    images = []
    for name in ("memory.png", "curve.png"):
        if plot and (folder / name).is_file():
            if folder.resolve() != out.resolve():
                shutil.copy(folder / name, out / name)
            images.append(out / name)
        elif plot and name == "memory.png" and (folder / "memory.json").is_file():
            # the stage ran out of time before its plot: draw it from the sizes it finished
            from bench.memory_profile import draw

            if draw(_prepare(_load(folder, "memory.json")["records"]), out / name):
                images.append(out / name)
    sections = [("kernels.json", "## Kernels", kernel_lines), ("epochs.json", "## Training epochs", epoch_lines),
                ("memory.json", "## Memory against graph size", memory_lines),
                ("curve.json", "## Gowalla LightGCN learning curve", curve_lines)]
    for name, title, render in sections:
        data = _load(folder, name)
        lines += [title, ""] + (render(data) if data else [f"Not measured: no {name} (see the stages).", ""])
    return "\n".join(lines).rstrip() + "\n", images
