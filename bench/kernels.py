"""The device run's kernel and memory stages: SpMM and the NGCF layer, ours / torch.sparse.mm
(cuSPARSE on CUDA) / a dense Â, float32 and bfloat16; time, peak memory and accuracy; the sweeps
that set the kernels' defaults (the SpMM long-row threshold T, NGCF's S saved vs recomputed);
beside each of our ops and its kernels, the static model's estimate for the same graph
(bench/kernel_static.py: compiled here, or an earlier report's SASS with ``--estimates``).

    python3 -m bench.kernels --out kernels.json                            # CUDA, default sizes
    python3 -m bench.kernels --memory --out memory.json --plot memory.png  # memory against N
    python3 -m bench.kernels --device cpu --sizes powerlaw-N300-nnz2000 --quick --out k.json

Every result is checked against torch's float32 composition on the same inputs (``rel_err``,
``check_ok``); a failing provider is recorded and the run goes on; the json (``{"meta",
"records"}``) is rewritten after each size, so a stage stopped by its time limit keeps every
finished size. How to read the tables: docs/BENCHMARKS.md, "GPU results".
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import torch

from bench import baselines, graphs
from bench.measure import (base_info, device_name, fmt_bytes, measure_once, memory_budget, sync,
                           time_call)
from bench.plot import MEMORY_PLOT, plot

SIZES = ["gowalla", "powerlaw-N100000", "powerlaw-N1000000-nnz50000000", "powerlaw-N1000000"]
MEMORY_SIZES = ["ml-latest-small", "gowalla"] + [f"powerlaw-N{n}" for n in (
    1000, 3000, 10_000, 30_000, 100_000, 300_000, 1_000_000)]
MEMORY_SPMM, MEMORY_NGCF = ("ours", "torch_csr", "dense", "gather_scatter"), \
    ("ours_fused", "torch_unfused", "dense")
THRESHOLDS = ["128", "256", "512", "1024", "2048", "4096", "off"]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
TOLERANCE = {"float32": 1e-4, "bfloat16": 5e-2}  # bf16: torch compositions round every op
NO_SPLIT = 1 << 30  # a threshold no row reaches: long-row splitting off
STATIC_OPS = {"ours_fused": ("ngcf_fwd_fused", "ngcf_bwd_fused"),  # the static report's ops
              "ours_spmm+torch": ("ngcf_fwd_unfused", "ngcf_bwd_unfused")}


def rel_err(out, ref) -> float:
    out, ref = out.detach().float(), ref.detach().float()
    return float((out - ref).norm() / ref.norm().clamp_min(1e-30))


class Static:
    """The static model's estimates of our ops on each graph: the kernels compiled for sm_90 with
    this machine's Triton (``compile``) or an earlier report's cases (a report.json path), then
    evaluated on the graph's degrees; ``none``: no estimates."""

    def __init__(self, source: str, d: int, dtypes):
        self.source, self.d, self.dtypes, self.cases, self.ops = source, d, list(dtypes), None, {}

    def evaluate(self, size, adj=None) -> None:
        """Estimates on graph ``size``; without ``adj``, only compile (before CUDA starts: the
        compiles run in forked processes)."""
        if self.source == "none":
            return
        from bench import kernel_static as KS

        g = KS.graph_of(size, [1, 2, 3]) if adj is None else KS.graph_of(
            size, adj.rowptr.diff().cpu().numpy(), adj.rowptr.dtype, adj.col.dtype)
        if self.cases is None and self.source != "compile":
            self.cases = [c for c in json.loads(Path(self.source).read_text())["cases"]
                          if c["arch"] == 90 and c["d"] == self.d and c["dtype"] in self.dtypes]
        report = KS.run(None, [self.d], self.dtypes, [90], list(KS.KERNELS), os.cpu_count(),
                        KS.CACHE, graphs={size: g}, cases=self.cases)
        self.cases = report["cases"]
        self.ops.update({(size, r["op"], r["dtype"]): r for r in report["ops"]})

    def fields(self, size, dtype, *ops) -> dict:
        """``static_estimate_us`` / ``static_serial_us`` (the ops' sums) and ``static_kernels_us``
        (per kernel function; None where a launch has no estimate, as the composed layer's
        ``torch:`` ops)."""
        rows = [self.ops.get((size, op, str(dtype).replace("torch.", ""))) for op in ops]
        if not ops or None in rows:
            return {}
        from bench.kernel_static import KERNELS

        kernels = {}
        for k, kdt in (launch for r in rows for launch in r["launches"]):
            c = next((c for c in self.cases if (c["kernel"], c["dtype"]) == (k, kdt)), {})
            name = KERNELS[k].fn().__name__ if k in KERNELS else k
            est = c.get(size, {}).get("estimate_us")
            before = kernels.get(name, 0.0)
            kernels[name] = None if est is None or before is None else before + est
        return dict(static_estimate_us=sum(r[f"estimate_us_{size}"] or 0 for r in rows),
                    static_serial_us=sum(r[f"serial_us_{size}"] or 0 for r in rows),
                    static_kernels_us=kernels,
                    static_source=self.source if self.source != "compile" else "compiled here")


def kernel_times(fn, device) -> dict:
    """µs per GPU kernel name in one call of ``fn`` (torch.profiler), {} off CUDA."""
    if device.type != "cuda":
        return {}
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        sync(device)
    times = {}
    for e in prof.key_averages():
        if e.device_type.name == "CUDA" and e.self_device_time_total > 0:
            times[e.key] = e.self_device_time_total
    return times


class Bench:
    """Runs the cases of one graph after another and collects their records."""

    def __init__(self, device, quick: bool, thresholds=(), timed: bool = True, static=None):
        self.device, self.quick, self.thresholds, self.timed = device, quick, thresholds, timed
        self.static, self.records = static or Static("none", 0, ()), []

    def case(self, base: dict, fn, *, check=None, repr_bytes=None, model_bytes=None, ops=(),
             **extra):
        """Warm up (compile), peak memory and check on one call, then time; errors are recorded.
        ``quick``: the first call is all (dry runs). ``ops``: the static report's ops ``fn`` runs
        (their estimates and, on CUDA, each kernel's measured time go into the record)."""
        rec = dict(base, **extra, **self.static.fields(base["size"], base["dtype"], *ops),
                   repr_bytes=repr_bytes, status="ok")
        try:
            if not self.quick:  # compilation and cached bookkeeping are not working memory
                fn()
                sync(self.device)
            rec["peak_mem_bytes"], rec["seconds"], out = measure_once(fn, self.device)
            if check is not None:
                rec["rel_err"] = check(out)
                rec["check_ok"] = rec["rel_err"] <= TOLERANCE[base["dtype"]]
            del out
            if self.timed and not self.quick:
                rec["seconds"] = time_call(fn, self.device, repeat=5)
                if ops:
                    rec["measured_kernels_us"] = kernel_times(fn, self.device)
        except torch.OutOfMemoryError:
            rec["status"] = "OOM (ran out)"
        except Exception as exc:  # noqa: BLE001 - one failed provider must not end the run
            rec["status"] = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if rec["status"] == "ok":
            rec["memory"] = (repr_bytes or 0) + (rec["peak_mem_bytes"] or 0)
            if model_bytes:
                rec.update(model_bytes=model_bytes, gbps=model_bytes / rec["seconds"] / 1e9)
        self.records.append(rec)
        shown = ("op", "dtype", "provider", "size", "seconds", "static_estimate_us",
                 "peak_mem_bytes", "rel_err", "status")
        print(json.dumps({k: rec.get(k) for k in shown}), flush=True)

    def base(self, op, size, adj, dtype, d) -> dict:
        return dict(base_info(op, None, size, adj, d, dtype, self.device),
                    max_degree=int(adj.rowptr.diff().max()))

    def build(self, make, provider, base, dtype):
        """``make(provider)`` -> ``(fn, repr_bytes, extra)``; None for a dense Â over the budget
        (recorded with its computed need), a failing ``fn`` when the provider cannot be built
        (e.g. a dtype it lacks)."""
        needs = baselines.dense_bytes(base["N"], dtype)
        if provider == "dense" and needs > memory_budget(self.device):
            self.records.append(dict(base, provider="dense", memory=needs, needs_bytes=needs,
                                     status=f"OOM (needs {fmt_bytes(needs)})", seconds=None))
            return None
        try:
            return make(provider)
        except Exception as exc:  # noqa: BLE001 - recorded by case(); the others still run
            def fn(*args, **kwargs):
                raise exc
            return fn, None, {}

    # ------------------------------------------------------------------ SpMM
    def spmm(self, size, adj, dtype, d, providers=("ours", "torch_csr", "dense")):
        x = torch.randn(adj.n_nodes, d, generator=torch.Generator().manual_seed(0))
        x = x.to(self.device, dtype)
        ref = torch.sparse.mm(baselines.torch_csr(adj), x.float())
        base = self.base("spmm", size, adj, dtype, d)
        model = baselines.spmm_model_bytes(adj.n_nodes, adj.nnz, d, x.element_size())
        for provider in providers:
            built = self.build(lambda p: baselines.spmm_provider(p, adj, x), provider, base, dtype)
            if built is not None:
                self.case(dict(base, provider=provider), built[0], check=lambda y: rel_err(y, ref),
                          repr_bytes=built[1], model_bytes=model, **built[2],
                          ops=("csr_spmm",) if provider == "ours" else ())
        if dtype == torch.float32 and self.timed:
            self.spmm_backward(size, adj, x, d)
            base = self.base("spmm_threshold", size, adj, x.dtype, d)
            for t in self.thresholds:
                threshold = NO_SPLIT if t == "off" else int(t)
                fn = lambda t=threshold: baselines.ours_spmm(adj, x, long_threshold=t)  # noqa: E731
                self.case(dict(base, provider=f"T={t}"), fn, check=lambda y: rel_err(y, ref),
                          repr_bytes=adj.nbytes, model_bytes=model)

    def spmm_backward(self, size, adj, x, d):
        base, grad = self.base("spmm_fwd_bwd", size, adj, x.dtype, d), torch.randn_like(x)
        a = baselines.torch_csr(adj)
        ref = x.detach().clone().requires_grad_()
        torch.sparse.mm(a, ref).backward(grad)
        for provider in ("ours", "torch_csr"):
            xg = x.detach().clone().requires_grad_()

            def fn(xg=xg, provider=provider):
                xg.grad = None
                y = baselines.ours_spmm(adj, xg) if provider == "ours" else torch.sparse.mm(a, xg)
                y.backward(grad)
                return xg.grad

            self.case(dict(base, provider=provider), fn, check=lambda g: rel_err(g, ref.grad),
                      repr_bytes=adj.nbytes,  # A symmetric: dx is another A x
                      ops=("csr_spmm", "csr_spmm") if provider == "ours" else ())

    # ------------------------------------------------------------------ NGCF layer
    def ngcf(self, size, adj, dtype, d, variants=None):
        e, w1, w2, b, grad = baselines.ngcf_inputs(adj.n_nodes, d, self.device, dtype)
        ref = baselines.reference_layer(adj, (e, w1, w2, b), grad, torch.float32, self.device)
        base = self.base("ngcf_layer_fwd_bwd", size, adj, dtype, d)
        variants = variants or {"ours_fused (S saved)": ("ours_fused", {"recompute_s": False}),
                                "ours_fused (S recomputed)": ("ours_fused", {"recompute_s": True}),
                                "ours_spmm+torch": ("ours_spmm+torch", {}),
                                "torch_unfused": ("torch_unfused", {}), "dense": ("dense", {})}
        for label, (provider, options) in variants.items():
            built = self.build(lambda p: baselines.ngcf_provider(p, adj, dtype), provider, base,
                               dtype)
            ops = () if options.get("recompute_s") else STATIC_OPS.get(provider, ())
            if built is not None:
                fn, check = self.fwd_bwd(built[0], (e, w1, w2, b), grad, options, ref)
                self.case(dict(base, provider=label), fn, check=check, repr_bytes=built[1],
                          ops=ops, **built[2])
                if self.timed and provider in ("ours_fused", "ours_spmm+torch", "torch_unfused") \
                        and not options.get("recompute_s"):  # the forward alone, as the model's
                    fwd = lambda f=built[0], o=options: f(e, w1, w2, b, **o)  # noqa: E731
                    with torch.no_grad():
                        self.case(dict(base, op="ngcf_layer_fwd", provider=label), fwd,
                                  check=lambda y: rel_err(y, ref[-1]), ops=ops[:1])
            built = fn = check = None  # a dense Â goes before the next case
        if dtype == torch.float32 and self.timed:
            base = self.base("ngcf_threshold", size, adj, dtype, d)
            layer, repr_bytes, _ = baselines.ngcf_provider("ours_fused", adj)
            for t in self.thresholds:
                options = {"long_threshold": NO_SPLIT if t == "off" else int(t)}
                fn, check = self.fwd_bwd(layer, (e, w1, w2, b), grad, options, ref)
                self.case(dict(base, provider=f"T={t}"), fn, check=check, repr_bytes=repr_bytes)

    @staticmethod
    def fwd_bwd(layer, tensors, grad, options, ref):
        """``(fn, check)``: forward + backward of ``layer``; its largest rel err against ``ref``."""
        params, last = [t.detach().clone().requires_grad_() for t in tensors], []

        def fn():
            for p in params:
                p.grad = None
            out = layer(*params, **options)
            out.backward(grad)
            last[:] = [out.detach()]
            return last[0]

        return fn, lambda _: max(map(rel_err, [p.grad for p in params] + last, ref))


def copy_bandwidth(device) -> float:
    """Device-to-device copy, bytes read + written per second (the memory ceiling)."""
    a = torch.empty(2**28 if device.type == "cuda" else 2**24, device=device).normal_()
    b = torch.empty_like(a)
    return 2 * a.numel() * 4 / time_call(lambda: b.copy_(a), device)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--sizes", default=None, help="comma-separated size labels (bench/graphs.py)")
    p.add_argument("--thresholds", default=",".join(THRESHOLDS),
                   help="long-row thresholds T to sweep ('off': no splitting)")
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--quick", action="store_true", help="one call per case (dry runs)")
    p.add_argument("--memory", action="store_true", help="memory against N (float32) instead")
    p.add_argument("--out", type=Path, required=True, help="json file to write")
    p.add_argument("--plot", type=Path, help="with --memory: the png to draw (needs matplotlib)")
    p.add_argument("--estimates", default=None, help="the static model's estimates: 'compile' "
                   "(default on CUDA), a report.json to take the kernels' SASS from, or 'none'")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    estimates = args.estimates or ("compile" if device.type == "cuda" else "none")
    static = Static("none" if args.memory else estimates, args.d, list(DTYPES))
    bench = Bench(device, args.quick, [t for t in args.thresholds.split(",") if t], not args.memory,
                  static)
    meta = {"device": device_name(device), "torch": torch.__version__, "d": args.d,
            "started": datetime.datetime.now().isoformat(), "budget_bytes": memory_budget(device),
            "sizes_done": [], "static_estimates": static.source}
    if not args.memory:
        import triton

        if static.source == "compile":
            static.evaluate("compile")
        meta.update(triton=triton.__version__, copy_gbps=copy_bandwidth(device) / 1e9)
        print(f"device {meta['device']}: copy bandwidth {meta['copy_gbps']:.0f} GB/s", flush=True)
    sizes = args.sizes.split(",") if args.sizes else MEMORY_SIZES if args.memory else SIZES
    for size in filter(None, sizes):
        start = time.perf_counter()
        try:
            adj = graphs.graph(size, device)
        except Exception as exc:  # noqa: BLE001 - e.g. data not found: the other sizes still run
            print(f"{size}: skipped ({type(exc).__name__}: {exc})", flush=True)
            continue
        print(f"{size}: N={adj.n_nodes:,} nnz={adj.nnz:,} ({time.perf_counter() - start:.1f} s)",
              flush=True)
        try:
            static.evaluate(size, adj)
        except Exception as exc:  # noqa: BLE001 - no estimate must not cost the measurements
            meta.setdefault("static_errors", []).append(f"{size}: {type(exc).__name__}: {exc}"[:300])
        if args.memory:
            bench.spmm(size, adj, torch.float32, args.d, MEMORY_SPMM)
            bench.ngcf(size, adj, torch.float32, args.d, {p: (p, {}) for p in MEMORY_NGCF})
        else:
            for dtype in DTYPES.values():
                bench.spmm(size, adj, dtype, args.d)
                bench.ngcf(size, adj, dtype, args.d)
        graphs.release_device_graphs()
        meta["sizes_done"].append({"size": size, "seconds": time.perf_counter() - start})
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(json.dumps({"meta": meta, "records": bench.records}, indent=1) + "\n")
        tmp.replace(args.out)
    if args.memory and args.plot is not None:
        drawn = plot(bench.records, args.plot, *MEMORY_PLOT)
        print(f"plot {'written to ' + str(args.plot) if drawn else 'not drawn (no matplotlib)'}")
    failed = [r for r in bench.records if r.get("check_ok") is False]
    for r in failed:
        print(f"CHECK FAILED: {r['op']} {r['dtype']} {r['provider']} {r['size']}: "
              f"rel_err {r['rel_err']:.2e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
