"""Timing and memory measurement shared by ``pytest bench/`` and the ``python -m bench.*`` runs.

* :func:`run_benchmark` times a callable with pytest-benchmark and fills ``extra_info``
  (CUDA: ``do_bench_ms``, ``peak_mem_bytes`` above the inputs);
* :func:`time_call` / :func:`cuda_peak_bytes` do the same without pytest (device-run modules);
* :class:`PeakRSS` measures the CPU's peak resident memory of a piece of work: the kernel's
  high-water mark ``VmHWM`` of ``/proc/self/status``, reset by writing ``5`` to
  ``/proc/self/clear_refs`` (Linux ≥ 4.0), after returning freed heap pages (``malloc_trim``)
  so memory freed earlier cannot hide new allocations.
"""
from __future__ import annotations

import ctypes
import gc
import re
import statistics
import time
from typing import Callable, List, Optional

import torch

from bench.settings import bench_device, device_name, memory_budget, target_seconds

#: Providers that were not attempted (over the memory budget), for the json's ``gnn_not_run``.
NOT_RUN: List[dict] = []


def fmt_gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e8 else f"{nbytes / 1e9:.3f} GB"


# --------------------------------------------------------------------------- CPU memory
class PeakRSS:
    """Peak resident set size above a baseline, from the kernel's own accounting.

        meter = PeakRSS(); meter.reset(); work(); extra = meter.peak_above_start()

    ``available`` is False where /proc or the reset is missing (then the peak is None).
    """

    _STATUS = "/proc/self/status"

    def __init__(self):
        self.start = None
        self.available = self._read("VmHWM") is not None

    @classmethod
    def _read(cls, field: str) -> Optional[int]:
        try:
            with open(cls._STATUS) as f:
                match = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
        except OSError:
            return None
        return int(match.group(1)) * 1024 if match else None

    @staticmethod
    def _trim() -> None:
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc: nothing to return
            pass

    def reset(self) -> None:
        """Start a measurement: the high-water mark drops to the current RSS."""
        if not self.available:
            return
        self._trim()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            self.available = False
            return
        self.start = self._read("VmRSS")

    def peak_above_start(self) -> Optional[int]:
        """Bytes the peak RSS rose above the RSS at :meth:`reset`."""
        if not self.available or self.start is None:
            return None
        return max(0, self._read("VmHWM") - self.start)


# --------------------------------------------------------------------------- CUDA / timing
def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def cuda_peak_bytes(fn: Callable[[], object], device) -> int:
    """Peak bytes allocated above the current allocation during one call of ``fn``."""
    return measure_once(fn, device)[0]


def measure_once(fn: Callable[[], object], device, keep_output: bool = False) -> tuple:
    """``(peak bytes above the current use, seconds)`` of one call of ``fn``: CUDA allocator
    statistics on a GPU, the process's peak RSS (:class:`PeakRSS`) on the CPU (None where not
    measurable); ``keep_output`` appends the call's result."""
    cuda = torch.device(device).type == "cuda"
    if cuda:
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        meter = PeakRSS()
        meter.reset()
    start = time.perf_counter()
    out = fn()
    sync(device)
    seconds = time.perf_counter() - start
    peak = int(torch.cuda.max_memory_allocated(device) - base) if cuda else meter.peak_above_start()
    return (peak, seconds, out) if keep_output else (peak, seconds)


def peak_bytes(fn: Callable[[], object], device) -> Optional[int]:
    """Peak memory above the current use during one call (see :func:`measure_once`)."""
    return measure_once(fn, device)[0]


def time_call(fn: Callable[[], object], device, *, repeat: int = 5) -> float:
    """Median seconds per call: ``triton.testing.do_bench`` on CUDA, else ``repeat`` timed
    calls after one warm-up (the caller has usually run one already)."""
    if torch.device(device).type == "cuda":
        import triton.testing

        return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")) / 1e3
    fn()
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --------------------------------------------------------------------------- pytest-benchmark
def base_info(op: str, provider: str, size: str, adj, d: int, dtype: torch.dtype,
              device: torch.device) -> dict:
    """The record every result starts from (sizes from ``adj``: an Adjacency or alike)."""
    return {"op": op, "provider": provider, "size": size, "device": device_name(device),
            "device_type": device.type, "dtype": str(dtype).replace("torch.", ""), "d": d,
            "N": int(adj.n_nodes), "nnz": int(adj.nnz), "n_users": int(adj.n_users),
            "n_items": int(adj.n_items), "torch": torch.__version__}


def run_benchmark(benchmark, fn: Callable[[], object], info: dict, *,
                  device: torch.device, model_bytes: Optional[int] = None,
                  check: Optional[Callable[[object], None]] = None,
                  max_rounds: int = 30, min_rounds: int = 2, warmup: bool = True) -> None:
    """Time ``fn`` with ``benchmark.pedantic`` and fill ``benchmark.extra_info``.

    One untimed call first (warm-up, Triton compilation; its result goes to ``check``) also
    sizes the rounds so that a benchmark costs about GNN_BENCH_TARGET_S seconds (a single round
    when one call takes over a second). On CUDA the timed call synchronises, and the peak memory
    above the inputs (``peak_mem_bytes``) and the ``triton.testing.do_bench`` median are
    recorded; on the CPU the peak RSS of the timed rounds above the RSS before them
    (``cpu_peak_rss_bytes``, :class:`PeakRSS`): the working memory of a call.
    ``warmup=False`` (CPU only; for calls known to take seconds) times one single call instead.
    """
    benchmark.group = f"{info['op']} | {info['size']}"
    benchmark.extra_info.update(info)
    cuda = device.type == "cuda"

    def timed():
        out = fn()
        if cuda:
            torch.cuda.synchronize(device)
        return out

    if benchmark.disabled or (not warmup and not cuda):
        # one call: the smoke run still exercises the code; a slow CPU case is timed once
        out = benchmark.pedantic(timed, rounds=1, iterations=1)
        if check is not None:
            check(out)
        return
    start = time.perf_counter()
    out = timed()
    first = time.perf_counter() - start
    if check is not None:
        check(out)
    del out
    if cuda:
        benchmark.extra_info["peak_mem_bytes"] = cuda_peak_bytes(timed, device)
        benchmark.extra_info["do_bench_ms"] = time_call(fn, device) * 1e3
    low = 1 if first > 1.0 else min_rounds
    rounds = int(max(low, min(max_rounds, target_seconds() / max(first, 1e-6))))
    meter = None if cuda else PeakRSS()
    if meter is not None:
        meter.reset()  # after the warm-up: one-time costs (library pages, caches) stay out
    benchmark.pedantic(timed, rounds=rounds, warmup_rounds=0, iterations=1)
    if meter is not None and meter.peak_above_start() is not None:
        benchmark.extra_info["cpu_peak_rss_bytes"] = meter.peak_above_start()
    if model_bytes is not None:
        benchmark.extra_info["model_bytes"] = int(model_bytes)
        median_s = benchmark.stats.stats.median
        if "do_bench_ms" in benchmark.extra_info:
            median_s = benchmark.extra_info["do_bench_ms"] / 1e3
        benchmark.extra_info["gbps"] = model_bytes / median_s / 1e9
        benchmark.extra_info["gbps_note"] = "docs/DESIGN.md §4 byte model, best case G = N*d*b"


def not_run(info: dict, needs_bytes: int, name: str, what: str = "dense Â") -> str:
    """Record a provider that would not fit; returns the skip reason ``OOM (needs X GB): ...``."""
    status = f"OOM (needs {fmt_gb(needs_bytes)})"
    budget = memory_budget(bench_device())
    NOT_RUN.append(dict(info, status=status, needs_bytes=int(needs_bytes), budget_bytes=budget,
                        what=what, group=f"{info['op']} | {info['size']}", name=name))
    return (f"{status}: {what} of {info['size']} exceeds the budget of {fmt_gb(budget)} "
            f"(computed, not attempted)")
