"""The few numbers of a device run that the README quotes, each with its conditions.

    python -m bench.report results/gpu/ --out results/gpu/ --section gpu \\
        --update-docs docs/BENCHMARKS.md --headlines README.md

Every line is read off the device run's files (bench/report_device.py has the full tables); a
number that was not measured is left out, never estimated.
"""
from __future__ import annotations

import json
from pathlib import Path

from bench.report import fmt_bytes, fmt_time


def _records(folder: Path, name: str) -> list:
    path = folder / name
    return json.loads(path.read_text()).get("records", []) if path.is_file() else []


def _find(records, **match):
    return next((r for r in records if r.get("status") == "ok"
                 and all(r.get(k) == v for k, v in match.items())), None)


def _versus(records, op, dtype, size, ours, theirs) -> str:
    a = _find(records, op=op, dtype=dtype, size=size, provider=ours)
    b = _find(records, op=op, dtype=dtype, size=size, provider=theirs)
    if not (a and b):
        return ""
    text = (f"{fmt_time(a['seconds'])} vs {fmt_time(b['seconds'])} "
            f"(**{b['seconds'] / a['seconds']:.2f}×**)")
    if a.get("peak_mem_bytes") and b.get("peak_mem_bytes"):
        text += f", peak memory {fmt_bytes(a['memory'])} vs {fmt_bytes(b['memory'])}"
    return text


def headlines(folder) -> str:
    folder = Path(folder)
    device = json.loads((folder / "device.json").read_text())
    m = device.get("machine", {})
    lines = [f"Device run of {device.get('started', '?')} on {m.get('gpu', 'no GPU')} "
             f"(torch {m.get('torch', '?')}, triton {m.get('triton', '?')}); full tables in "
             f"[docs/BENCHMARKS.md](docs/BENCHMARKS.md#gpu-results-the-device-run)."
             + (" **Dry run on the CPU: the numbers mean nothing.**" if device.get("dry_run") else ""),
             ""]
    tests = next((s for s in device.get("stages", []) if s["name"] == "tests"), None)
    if tests:
        lines.append(f"- Tests on CUDA: {tests['status']}, `{(tests.get('tail') or ['?'])[-1]}`")
    kernels = _records(folder, "kernels.json")
    for size in dict.fromkeys(r["size"] for r in kernels):
        first = next(r for r in kernels if r["size"] == size)
        parts = [("SpMM fp32, ours vs cuSPARSE", _versus(kernels, "spmm", "float32", size, "ours", "torch_csr")),
                 ("SpMM bf16 vs fp32 (ours)", _ratio(kernels, size)),
                 ("NGCF layer fwd + bwd fp32, fused vs torch.sparse + torch ops",
                  _versus(kernels, "ngcf_layer_fwd_bwd", "float32", size, "ours_fused (S saved)",
                          "torch_unfused"))]
        shown = "; ".join(f"{what}: {text}" for what, text in parts if text)
        if shown:
            lines.append(f"- {size} (N = {first['N']:,}, nnz = {first['nnz']:,}): {shown}")
    epochs = _records(folder, "epochs.json")
    gowalla = [r for r in epochs if r.get("dataset") == "gowalla" and r.get("status") == "ok"]
    if gowalla:
        lines.append("- Gowalla training, epochs/s (d = 64, 3 layers, batch 2048): " + ", ".join(
            f"{r['provider']} {r['epochs_per_s']:.2f}" for r in gowalla))
    memory = _records(folder, "memory.json")
    largest = max((r for r in memory if r.get("provider") == "ours" and r.get("status") == "ok"),
                  key=lambda r: r["N"], default=None)
    if largest:
        dense = next((r for r in memory if r["op"] == "spmm" and r["provider"] == "dense"
                      and r["size"] == largest["size"]), None)
        lines.append(f"- Memory of one SpMM at N = {largest['N']:,}: ours {fmt_bytes(largest['memory'])}"
                     + (f", a dense Â {fmt_bytes(dense['memory'])}"
                        f"{'' if dense.get('status') == 'ok' else ' (computed: not built)'}" if dense else ""))
    curve = folder / "curve.json"
    if curve.is_file():
        c = json.loads(curve.read_text())
        lines.append(f"- Gowalla LightGCN, {c.get('epochs')} epochs ({c.get('device', '?')}): test recall@20 "
                     f"{c.get('recall@20', 0):.4f}, NDCG@20 {c.get('ndcg@20', 0):.4f} "
                     f"({fmt_time(c.get('sec_per_epoch'))} per epoch; the paper's 1000 epochs: "
                     f"{(c.get('paper') or {}).get('recall@20', '–')} / {(c.get('paper') or {}).get('ndcg@20', '–')})")
    return "# GPU headlines\n\n" + "\n".join(lines) + "\n"


def _ratio(records, size) -> str:
    fp32 = _find(records, op="spmm", dtype="float32", size=size, provider="ours")
    bf16 = _find(records, op="spmm", dtype="bfloat16", size=size, provider="ours")
    if not (fp32 and bf16):
        return ""
    return f"{fmt_time(bf16['seconds'])} vs {fmt_time(fp32['seconds'])} (**{fp32['seconds'] / bf16['seconds']:.2f}×**)"
