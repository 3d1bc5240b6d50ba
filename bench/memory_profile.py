"""Memory against graph size, ours vs the dense adjacency, as a table and a plot.

    python3 -m bench.memory_profile --out memory.json --plot memory.png          # CUDA
    python3 -m bench.memory_profile --device cpu --sizes powerlaw-N500 --out m.json --plot m.png

For each size (power-law graphs N = 10³ … 10⁶ with nnz = 20·N, then ml-latest-small and
Gowalla as markers) and each provider of SpMM ``Â·E`` and of the NGCF layer's forward + backward
(d = 64, float32): the memory is the provider's representation (CSR arrays, torch's CSR, the
dense N×N matrix, the edge list) plus the peak allocated above the inputs during one call
(CUDA allocator statistics; on the CPU the peak RSS). A dense Â over the memory budget (80 % of
free device memory) is not built: its need N²·4 bytes is recorded and drawn hollow. The json is
rewritten after every size; the plot is drawn at the end (bench/report_plot.py), or by
``python -m bench.report`` from the json when the run was stopped before.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from bench import baselines, graphs
from bench.measure import fmt_gb, measure_once, sync
from bench.report_plot import plot
from bench.settings import device_name, memory_budget

DEFAULT_SIZES = ["ml-latest-small", "gowalla", "powerlaw-N1000", "powerlaw-N3000",
                 "powerlaw-N10000", "powerlaw-N30000", "powerlaw-N100000", "powerlaw-N300000",
                 "powerlaw-N1000000"]
SPMM = ["ours", "torch_csr", "dense", "gather_scatter"]
NGCF = ["ours_fused", "torch_unfused", "dense"]
TITLES = {"spmm": "SpMM Â·E (fp32, d = 64)", "ngcf_layer_fwd_bwd": "NGCF layer fwd + bwd"}


def profile_size(size: str, device, d: int) -> list:
    adj = graphs.graph(size, device)
    base = {"size": size, "N": adj.n_nodes, "nnz": adj.nnz, "d": d, "dtype": "float32",
            "device": device_name(device)}
    x = torch.randn(adj.n_nodes, d, generator=torch.Generator().manual_seed(0)).to(device)
    e, w1, w2, b, grad = baselines.ngcf_inputs(adj.n_nodes, d, device)
    records = []
    for op, providers in (("spmm", SPMM), ("ngcf_layer_fwd_bwd", NGCF)):
        for provider in providers:
            rec = dict(base, op=op, provider=provider, status="ok", seconds=None)
            needs = baselines.dense_bytes(adj.n_nodes, torch.float32)
            if provider == "dense" and needs > memory_budget(device):
                rec.update(status=f"OOM (needs {fmt_gb(needs)})", memory=needs, needs_bytes=needs)
                records.append(rec)
                continue
            try:
                if op == "spmm":
                    fn, rec["repr_bytes"], _ = baselines.spmm_provider(provider, adj, x)
                else:
                    layer, rec["repr_bytes"], _ = baselines.ngcf_provider(provider, adj)
                    params = [t.clone().requires_grad_() for t in (e, w1, w2, b)]
                    fn = lambda layer=layer, params=params: layer(*params).backward(grad)  # noqa: E731
                fn()  # warm-up: compilation and cached bookkeeping are not working memory
                sync(device)
                rec["peak_mem_bytes"], rec["seconds"] = measure_once(fn, device)
                rec["memory"] = rec["repr_bytes"] + (rec["peak_mem_bytes"] or 0)
            except torch.OutOfMemoryError:
                rec.update(status="OOM (ran out)")
            except Exception as exc:  # noqa: BLE001 - recorded; the other providers still run
                rec.update(status=f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
            fn = layer = params = None
            if device.type == "cuda":
                torch.cuda.empty_cache()
            records.append(rec)
            print(json.dumps({k: rec.get(k) for k in ("op", "provider", "size", "memory",
                                                      "status")}), flush=True)
    graphs.release_device_graphs()
    return records


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--sizes", default=",".join(DEFAULT_SIZES))
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--out", type=Path, required=True, help="json file to write")
    p.add_argument("--plot", type=Path, help="png to draw (needs matplotlib)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    meta = {"device": device_name(device), "torch": torch.__version__, "d": args.d,
            "budget_bytes": memory_budget(device)}
    records = []
    for size in filter(None, args.sizes.split(",")):
        try:
            records += profile_size(size, device, args.d)
        except Exception as exc:  # noqa: BLE001 - e.g. data not found: the other sizes still run
            print(f"{size}: skipped ({type(exc).__name__}: {exc})", flush=True)
            continue
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(json.dumps({"meta": meta, "records": records}, indent=1) + "\n")
        tmp.replace(args.out)
    if args.plot is not None:
        drawn = draw(records, args.plot)
        print(f"plot {'written to ' + str(args.plot) if drawn else 'not drawn (no matplotlib)'}")
    return 0


def draw(records: list, path: Path) -> bool:
    """The memory-against-N figure (False without matplotlib)."""
    return plot(records, path, list(TITLES), TITLES,
                memory_label="representation + peak above inputs [bytes]", time_axis=False)


if __name__ == "__main__":
    sys.exit(main())
