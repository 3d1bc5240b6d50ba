"""Kernel benchmark of the device run: SpMM and the NGCF layer, ours vs torch.sparse.mm (cuSPARSE
on CUDA) vs a dense Â, float32 and bfloat16, time and peak memory, plus the two sweeps that
settle the kernels' defaults: the SpMM long-row threshold T and NGCF's S saved vs recomputed.

    python3 -m bench.kernels --out kernels.json                        # CUDA, default sizes
    python3 -m bench.kernels --device cpu --sizes powerlaw-N300-nnz2000 --quick --out k.json

Graphs come from bench/graphs.py (the library's loader and bench/powerlaw.py), d = 64.
Times: ``triton.testing.do_bench`` medians on CUDA (a few timed calls on the CPU); memory: peak
allocated above the inputs during one call (the CPU: peak RSS). Every result is checked against
torch's float32 composition on the same (rounded) inputs: ``rel_err = ‖out − ref‖ / ‖ref‖``
(gradients included for forward + backward), ``check_ok`` within 1e-4 (fp32) / 5e-2 (bf16).
The json (``{"meta", "records"}``) is rewritten after each size, so a run stopped by its time
limit keeps every finished size; ``python -m bench.report`` makes the tables.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import torch

from bench import baselines, graphs
from bench.measure import fmt_gb, measure_once, peak_bytes, sync, time_call
from bench.settings import device_name, memory_budget

DEFAULT_SIZES = ["gowalla", "powerlaw-N100000", "powerlaw-N1000000-nnz50000000",
                 "powerlaw-N1000000"]
THRESHOLDS = ["128", "256", "512", "1024", "2048", "4096", "off"]
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 5e-2}  # bf16: torch compositions round every op
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
NO_SPLIT = 1 << 30  # a threshold no row reaches: long-row splitting off


def rel_err(out, ref) -> float:
    out, ref = out.detach().float(), ref.detach().float()
    return float((out - ref).norm() / ref.norm().clamp_min(1e-30))


class Bench:
    """Runs cases on one graph and collects their records."""

    def __init__(self, args, device):
        self.args, self.device, self.records = args, device, []
        self.last_out = None  # the output of the latest forward + backward call

    def case(self, base: dict, fn, *, check=None, repr_bytes=None, model_bytes=None, **extra):
        """Warm up (compile) and check once, then peak memory and time; errors are recorded."""
        rec = dict(base, **extra, repr_bytes=repr_bytes, status="ok")
        try:
            if self.args.quick:  # a single call: checked, timed and measured at once
                rec["peak_mem_bytes"], rec["seconds"], out = measure_once(fn, self.device, True)
            else:
                out = fn()
                sync(self.device)
            if check is not None:
                rec["rel_err"] = check(out)
                rec["check_ok"] = rec["rel_err"] <= TOLERANCE[DTYPES[base["dtype"]]]
            del out
            if not self.args.quick:
                rec["peak_mem_bytes"] = peak_bytes(fn, self.device)
                rec["seconds"] = time_call(fn, self.device, repeat=5)
        except torch.OutOfMemoryError:
            rec["status"] = "OOM (ran out)"
        except Exception as exc:  # noqa: BLE001 - one failed provider must not end the run
            rec["status"] = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if rec["status"] == "ok":
            rec["memory"] = (repr_bytes or 0) + (rec["peak_mem_bytes"] or 0)
            if model_bytes:
                rec["model_bytes"] = model_bytes
                rec["gbps"] = model_bytes / rec["seconds"] / 1e9
        self.records.append(rec)
        shown = {k: rec.get(k) for k in ("op", "dtype", "provider", "size", "seconds",
                                         "peak_mem_bytes", "rel_err", "status")}
        print(json.dumps(shown), flush=True)
        return rec

    def skip_dense(self, base: dict, dtype) -> bool:
        needs = baselines.dense_bytes(base["N"], dtype)
        if needs <= memory_budget(self.device):
            return False
        self.records.append(dict(base, provider="dense", status=f"OOM (needs {fmt_gb(needs)})",
                                 memory=needs, needs_bytes=needs, seconds=None))
        return True

    # ------------------------------------------------------------------ SpMM
    def spmm(self, size, adj, dtype, d):
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(adj.n_nodes, d, generator=gen).to(self.device, dtype)
        ref = torch.sparse.mm(baselines.torch_csr(adj), x.float())
        base = self.base("spmm", size, adj, dtype, d)
        model = baselines.spmm_model_bytes(adj.n_nodes, adj.nnz, d, x.element_size())
        for provider in ("ours", "torch_csr", "dense"):
            if provider == "dense" and self.skip_dense(base, dtype):
                continue
            try:
                fn, repr_bytes, extra = baselines.spmm_provider(provider, adj, x)
            except Exception as exc:  # noqa: BLE001 - e.g. a dtype the provider lacks
                fn, repr_bytes, extra = self.failing(exc), None, {}
            self.case(dict(base, provider=provider), fn, check=lambda y: rel_err(y, ref),
                      repr_bytes=repr_bytes, model_bytes=model, **extra)
            del fn
        if dtype == torch.float32:
            self.spmm_backward(size, adj, x, d)
            self.threshold_sweep(size, adj, x, d, model)

    def spmm_backward(self, size, adj, x, d):
        base = self.base("spmm_fwd_bwd", size, adj, x.dtype, d)
        grad = torch.randn_like(x)
        a = baselines.torch_csr(adj)
        ref_x = x.detach().clone().requires_grad_()
        torch.sparse.mm(a, ref_x).backward(grad)
        for provider in ("ours", "torch_csr"):
            xg = x.detach().clone().requires_grad_()

            def fn(xg=xg, provider=provider):
                xg.grad = None
                y = baselines.ours_spmm(adj, xg) if provider == "ours" else torch.sparse.mm(a, xg)
                y.backward(grad)
                return xg.grad

            self.case(dict(base, provider=provider), fn, check=lambda g: rel_err(g, ref_x.grad),
                      repr_bytes=baselines.csr_bytes(adj))

    def threshold_sweep(self, size, adj, x, d, model):
        base = self.base("spmm_threshold", size, adj, x.dtype, d)
        ref = torch.sparse.mm(baselines.torch_csr(adj), x)
        for t in self.args.thresholds:
            threshold = NO_SPLIT if t == "off" else int(t)
            fn = lambda threshold=threshold: baselines.ours_spmm(adj, x, long_threshold=threshold)  # noqa: E731
            self.case(dict(base, provider=f"T={t}"), fn, check=lambda y: rel_err(y, ref),
                      repr_bytes=baselines.csr_bytes(adj), model_bytes=model)

    # ------------------------------------------------------------------ NGCF layer
    def ngcf(self, size, adj, dtype, d):
        e, w1, w2, b, grad = baselines.ngcf_inputs(adj.n_nodes, d, self.device, dtype)
        ref = self.ngcf_reference(adj, (e, w1, w2, b), grad)
        base = self.base("ngcf_layer_fwd_bwd", size, adj, dtype, d)
        variants = [("ours_fused (S saved)", "ours_fused", {"recompute_s": False}),
                    ("ours_fused (S recomputed)", "ours_fused", {"recompute_s": True}),
                    ("ours_spmm+torch", "ours_spmm+torch", {}),
                    ("torch_unfused", "torch_unfused", {}), ("dense", "dense", {})]
        for label, provider, options in variants:
            if provider == "dense" and self.skip_dense(base, dtype):
                continue
            try:
                layer, repr_bytes, extra = baselines.ngcf_provider(provider, adj, dtype)
                fn, params = self.fwd_bwd(layer, (e, w1, w2, b), grad, options)
            except Exception as exc:  # noqa: BLE001
                fn, params, repr_bytes, extra = self.failing(exc), None, None, {}

            def check(_, params=params):
                outs = [p.grad for p in params] + [self.last_out]
                return max(rel_err(o, r) for o, r in zip(outs, ref))

            self.case(dict(base, provider=label), fn, check=check, repr_bytes=repr_bytes, **extra)
            fn = params = layer = self.last_out = None  # a dense Â goes before the next case
        if dtype == torch.float32:
            self.ngcf_threshold_sweep(size, adj, (e, w1, w2, b), grad, ref)

    def ngcf_threshold_sweep(self, size, adj, tensors, grad, ref):
        base = self.base("ngcf_threshold", size, adj, tensors[0].dtype, tensors[0].shape[1])
        layer, repr_bytes, _ = baselines.ngcf_provider("ours_fused", adj)
        for t in self.args.thresholds:
            options = {"long_threshold": NO_SPLIT if t == "off" else int(t)}
            fn, params = self.fwd_bwd(layer, tensors, grad, options)
            self.case(dict(base, provider=f"T={t}"), fn, repr_bytes=repr_bytes,
                      check=lambda _, p=params: max(rel_err(o, r) for o, r in
                                                    zip([q.grad for q in p] + [self.last_out], ref)))

    def fwd_bwd(self, layer, tensors, grad, options):
        """A callable running forward + backward of ``layer`` (gradients land in ``params``)."""
        params = [t.detach().clone().requires_grad_() for t in tensors]

        def fn():
            for p in params:
                p.grad = None
            out = layer(*params, **options)
            out.backward(grad)
            self.last_out = out.detach()
            return self.last_out

        return fn, params

    @staticmethod
    def ngcf_reference(adj, tensors, grad):
        """(de, dw1, dw2, db, out) of the float32 torch composition on the same inputs."""
        ref = [t.detach().float().clone().requires_grad_() for t in tensors]
        out = baselines.composed_layer(torch.sparse.mm(baselines.torch_csr(adj), ref[0]), *ref)
        out.backward(grad.float())
        return [p.grad for p in ref] + [out.detach()]

    # ------------------------------------------------------------------ helpers
    def base(self, op, size, adj, dtype, d):
        return {"op": op, "size": size, "dtype": str(dtype).replace("torch.", ""), "d": d,
                "N": adj.n_nodes, "nnz": adj.nnz, "n_users": adj.n_users,
                "n_items": adj.n_items, "device": device_name(self.device),
                "max_degree": int(adj.rowptr.diff().max())}

    @staticmethod
    def failing(exc):
        def fn():
            raise exc
        return fn


def copy_bandwidth(device) -> float:
    """Device-to-device copy, bytes read + written per second (the memory ceiling)."""
    n = 2**28 if device.type == "cuda" else 2**24
    a = torch.empty(n, dtype=torch.float32, device=device).normal_()
    b = torch.empty_like(a)
    return 2 * a.numel() * 4 / time_call(lambda: b.copy_(a), device)


def write(path: Path, meta: dict, records: list) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"meta": meta, "records": records}, indent=1) + "\n")
    tmp.replace(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--sizes", default=",".join(DEFAULT_SIZES), help="comma-separated size labels")
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--thresholds", default=",".join(THRESHOLDS),
                   help="long-row thresholds T to sweep ('off': no splitting)")
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--quick", action="store_true",
                   help="one call per case, checked, timed and measured at once (dry runs)")
    p.add_argument("--out", type=Path, required=True, help="json file to write")
    args = p.parse_args(argv)
    args.thresholds = [t for t in args.thresholds.split(",") if t]
    device = torch.device(args.device)
    import triton

    meta = {"device": device_name(device), "torch": torch.__version__,
            "triton": triton.__version__, "d": args.d, "started": datetime.datetime.now().isoformat(),
            "copy_gbps": copy_bandwidth(device) / 1e9, "sizes_done": [],
            "budget_bytes": memory_budget(device)}
    print(f"device {meta['device']}: copy bandwidth {meta['copy_gbps']:.0f} GB/s", flush=True)
    bench = Bench(args, device)
    for size in filter(None, args.sizes.split(",")):
        start = time.perf_counter()
        try:
            adj = graphs.graph(size, device)
        except Exception as exc:  # noqa: BLE001 - e.g. data not found: the other sizes still run
            print(f"{size}: skipped ({type(exc).__name__}: {exc})", flush=True)
            continue
        print(f"{size}: N={adj.n_nodes:,} nnz={adj.nnz:,} ({time.perf_counter() - start:.1f} s)",
              flush=True)
        for name in args.dtypes.split(","):
            bench.spmm(size, adj, DTYPES[name], args.d)
            bench.ngcf(size, adj, DTYPES[name], args.d)
        graphs.release_device_graphs()
        meta["sizes_done"].append({"size": size, "seconds": time.perf_counter() - start})
        write(args.out, meta, bench.records)
    failed = [r for r in bench.records if r.get("check_ok") is False]
    for r in failed:
        print(f"CHECK FAILED: {r['op']} {r['dtype']} {r['provider']} {r['size']}: "
              f"rel_err {r['rel_err']:.2e}", flush=True)
    write(args.out, meta, bench.records)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
