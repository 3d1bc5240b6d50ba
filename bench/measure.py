"""The benchmarks' knobs and measurements: device, d, budget, timing, peak memory, their units;
markdown tables and the one writer of a doc's generated section.

Knobs come from the environment, read once (table in docs/BENCHMARKS.md): GNN_BENCH_DEVICE,
_DIM, _DTYPES, _TARGET_S, _THREADS, _BUDGET, _THRESHOLDS, _RECOMPUTE_S here; GNN_BENCH_SIZES
and _POWERLAW in bench/graphs.py.
Memory: CUDA allocator statistics on a GPU; on the CPU the kernel's high-water mark VmHWM of
/proc/self/status, reset by writing 5 to /proc/self/clear_refs after freed heap pages went back
(malloc_trim), so that memory freed earlier cannot hide a new allocation.
"""
from __future__ import annotations

import ctypes
import gc
import os
import platform
import re
import statistics
import time
from pathlib import Path
from typing import Callable, List, Optional

import torch

ROOT = Path(__file__).resolve().parents[1]
CPU_BUDGET_RULE = "min(MemAvailable/4, 4 GiB)"
NOT_RUN: List[dict] = []  # providers not attempted (over the budget): the json's gnn_not_run
FAILED: List[dict] = []  # tests that failed (a check outside its tolerance): the json's gnn_failed
_STATUS = "/proc/self/status"


# --------------------------------------------------------------------------- knobs (read once)
def env_list(name: str, default: str = "") -> List[str]:
    """A comma-separated knob's items (spaces and empty items dropped)."""
    return [item for item in os.environ.get(name, default).replace(" ", "").split(",") if item]


DEVICE = torch.device(os.environ.get("GNN_BENCH_DEVICE")
                      or ("cuda" if torch.cuda.is_available() else "cpu"))
DIM = int(os.environ.get("GNN_BENCH_DIM", "64"))
TARGET_S = float(os.environ.get("GNN_BENCH_TARGET_S", "1.0" if DEVICE.type == "cuda" else "0.3"))
THREADS = int(os.environ.get("GNN_BENCH_THREADS") or 0)  # 0: torch's choice
#: relative norm error allowed per dtype (float32 is checked elementwise, as each test states).
#: bfloat16 rounds every operation of a torch composition, the reference's inputs included: the
#: torch compositions reach a few 1e-2 (more on a small graph), our fused layer about 2e-3, and a
#: wrong result O(1). 1e-1 catches the wrong without failing a baseline's measurement; the
#: kernels' own bfloat16 accuracy is tested with tight tolerances in tests/.
TOLERANCE = {"float32": None, "bfloat16": 1e-1}
DTYPES = env_list("GNN_BENCH_DTYPES", "float32")
if not DTYPES or set(DTYPES) - set(TOLERANCE):
    raise ValueError(f"GNN_BENCH_DTYPES must list some of {sorted(TOLERANCE)}, but got "
                     f"{os.environ.get('GNN_BENCH_DTYPES')!r}")
THRESHOLDS = env_list("GNN_BENCH_THRESHOLDS")  # long-row thresholds T to sweep ("off": no split)
RECOMPUTE_S = os.environ.get("GNN_BENCH_RECOMPUTE_S", "0") not in ("", "0")


def device_name(device) -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()} CPU ({torch.get_num_threads()} threads)"


def _proc_bytes(path: str, field: str) -> Optional[int]:
    """A ``field: N kB`` line of a /proc file, in bytes (None where there is none)."""
    try:
        with open(path) as f:
            match = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


def memory_budget(device) -> int:
    """Bytes one dense provider may allocate: ``$GNN_BENCH_BUDGET``, else 80 % of the free
    device memory on CUDA, min(MemAvailable / 4, 4 GiB) on the CPU (a shared machine must not
    swap)."""
    if os.environ.get("GNN_BENCH_BUDGET"):
        return int(float(os.environ["GNN_BENCH_BUDGET"]))
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()  # blocks cached from an earlier dense provider count as free
        return int(torch.cuda.mem_get_info(device)[0] * 0.8)
    available = _proc_bytes("/proc/meminfo", "MemAvailable") or 16 * 2**30
    return int(min(available // 4, 4 * 2**30))


# --------------------------------------------------------------------------- units, tables, docs
def fmt_bytes(n) -> str:
    if n is None:
        return "–"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}" if n / scale < 100 else f"{n / scale:.0f} {unit}"
    return f"{int(n)} B"


def fmt_time(seconds) -> str:
    if seconds is None:
        return "–"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms" if seconds < 0.1 else f"{seconds * 1e3:.0f} ms"
    return f"{seconds * 1e6:.0f} µs"


def fmt_us(v) -> str:
    return f"{v:.1f}" if v >= 10 else f"{v:.3g}"


def fmt_count(n) -> str:
    return f"{int(n):,}" if n is not None else "–"


def table(header, rows) -> list:
    """A markdown table's lines."""
    return ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"] + [
        "| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def pivot(items, row, col, cell, cols) -> list:
    """The rows of a table for ``table()``: one per distinct ``row(x)`` (the tuple of its leading
    cells, in first-seen order), then a cell per column of ``cols``: ``cell(x)`` of the last item
    with that row and ``col(x)``, "–" where no item has them. Every table of the reports is a
    plain list of rows or such a pivot (sizes x providers, kernels x sizes, ops x d)."""
    grid = {}
    for x in items:
        grid.setdefault(row(x), {})[col(x)] = cell(x)
    return [list(key) + [cells.get(c, "–") for c in cols] for key, cells in grid.items()]


def repo_path(path) -> str:
    """``path`` relative to the repository root (as the docs name results files), else absolute."""
    path = Path(path).resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def write_section(doc: Path, start: str, end: str, body: str, sources) -> None:
    """Replace the text between the markers ``start`` and ``end`` of ``doc`` with ``body``, each of
    its tables (or the block, if it has none) followed by ``<!-- numbers: SOURCES -->``: the
    results files its numbers come from, so that a test can check every number against them."""
    text, note, lines = doc.read_text(), f"<!-- numbers: {' '.join(sources)} -->", []
    if start not in text or end not in text:
        raise SystemExit(f"{doc} has no {start} ... {end} markers")
    body_lines = body.rstrip().splitlines() + [""]
    for line, after in zip(body_lines, body_lines[1:]):
        lines.append(line)
        if line.startswith("|") and not after.startswith("|"):  # a table's last row
            lines += ["", note]
    if note not in lines:
        lines += ["", note]
    head, rest = text.split(start, 1)
    doc.write_text(f"{head}{start}\n" + "\n".join(lines) + f"\n{end}{rest.split(end, 1)[1]}")


def update_docs(doc: Path, section: str, report: str, sources, images=()) -> None:
    """Write ``report`` into the bench:``section`` block of ``doc`` (title dropped, headings one
    level down, links to ``images`` relative to ``doc``, each image shown at the end)."""
    body = "\n".join("#" + line if line.startswith("#") else line
                     for line in report.split("\n", 1)[1].lstrip("\n").splitlines())
    for png in images:
        body = body.replace(f"]({png.name})", f"]({os.path.relpath(png, doc.parent)})")
    if images:
        body = body.rstrip() + "\n\n" + "\n".join(
            f"![{png.stem}]({os.path.relpath(png, doc.parent)})" for png in images)
    write_section(doc, f"<!-- bench:{section}:start -->", f"<!-- bench:{section}:end -->", body,
                  sources)


# --------------------------------------------------------------------------- memory
class PeakRSS:
    """``meter.reset(); work(); meter.peak_above_start()``: the peak RSS above the RSS at the
    reset, in bytes (None where /proc has no VmHWM or clear_refs, or before a reset)."""

    start: Optional[int] = None

    def reset(self) -> None:
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc: nothing to return
            pass
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            return
        self.start = _proc_bytes(_STATUS, "VmRSS")

    def peak_above_start(self) -> Optional[int]:
        peak = None if self.start is None else _proc_bytes(_STATUS, "VmHWM")
        return None if peak is None else max(0, peak - self.start)


# --------------------------------------------------------------------------- timing
def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def cuda_peak_bytes(fn: Callable[[], object], device) -> int:
    """The peak memory allocated above the current use during one call of ``fn``."""
    sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    sync(device)
    return int(torch.cuda.max_memory_allocated(device) - base)


def time_call(fn: Callable[[], object], device, repeat: int = 5) -> float:
    """Median seconds per call: ``triton.testing.do_bench`` on CUDA, else ``repeat`` timed calls
    after one more warm-up."""
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


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """``‖out − ref‖ / ‖ref‖`` in float64."""
    out, ref = out.detach().double(), ref.detach().double().to(out.device)
    return float((out - ref).norm() / ref.norm().clamp_min(1e-300))


def check_close(info: dict, outs, refs, rtol: float, atol: float) -> None:
    """Check ``outs`` against their float64 ``refs`` and record the largest relative error as
    ``info["rel_err"]``: float32 elementwise within ``rtol`` / ``atol``, a lower precision by
    its TOLERANCE on the relative error."""
    info["rel_err"] = max(rel_err(o, r) for o, r in zip(outs, refs))
    tolerance = TOLERANCE[info["dtype"]]
    if tolerance is None:
        for out, ref in zip(outs, refs):
            torch.testing.assert_close(out.detach().double(), ref.to(out.device), rtol=rtol,
                                       atol=atol)
    elif info["rel_err"] > tolerance:
        raise AssertionError(f"{info['op']} {info['provider']} {info['size']} {info['dtype']}: "
                             f"rel err {info['rel_err']:.2e} > {tolerance:g}")


def base_info(op: str, provider: str, size: str, adj, d: int, dtype, device) -> dict:
    """The record every suite result starts from (sizes from ``adj``, an Adjacency or alike)."""
    return {"op": op, "provider": provider, "size": size, "device": device_name(device),
            "device_type": device.type, "dtype": str(dtype).replace("torch.", ""), "d": d,
            "N": int(adj.n_nodes), "nnz": int(adj.nnz), "n_users": int(adj.n_users),
            "n_items": int(adj.n_items), "torch": torch.__version__}


def run_benchmark(benchmark, fn: Callable[[], object], info: dict, *, device: torch.device,
                  model_bytes: Optional[int] = None, check: Optional[Callable] = None,
                  warmup: bool = True) -> None:
    """Time ``fn`` with ``benchmark.pedantic`` and fill ``benchmark.extra_info``.

    An untimed first call (warm-up, Triton compilation; its result goes to ``check``) sizes the
    rounds to about GNN_BENCH_TARGET_S seconds (2 to 30; one round for calls over 1 s or a target
    of 0; a provider without the dtype is skipped). CUDA records the peak memory above the inputs
    (``peak_mem_bytes``) and the ``do_bench`` median; the CPU the peak RSS of the timed rounds
    above the RSS before them (``cpu_peak_rss_bytes``).
    ``warmup=False`` (CPU; for calls known to take seconds) times a single call instead.
    """
    benchmark.group = f"{info['op']} | {info['size']}"
    benchmark.extra_info.update(info)
    cuda = device.type == "cuda"

    def timed():
        out = fn()
        sync(device)
        return out

    single = benchmark.disabled or (not warmup and not cuda)
    start = time.perf_counter()
    try:
        out = benchmark.pedantic(timed, rounds=1, iterations=1) if single else timed()
    except NotImplementedError as exc:  # torch lacks the dtype for this provider
        import pytest

        pytest.skip(f"{info['provider']} has no {info['dtype']} here: {str(exc).splitlines()[0]}")
    first = time.perf_counter() - start
    if check is not None:
        check(out)
    del out
    if single:
        return
    if cuda:
        benchmark.extra_info["peak_mem_bytes"] = cuda_peak_bytes(timed, device)
        benchmark.extra_info["do_bench_ms"] = time_call(fn, device) * 1e3
    low = 1 if first > 1.0 or TARGET_S <= 0 else 2
    rounds = int(max(low, min(30, TARGET_S / max(first, 1e-6))))
    meter = PeakRSS()
    if not cuda:
        meter.reset()  # after the warm-up: one-time costs (library pages, caches) stay out
    benchmark.pedantic(timed, rounds=rounds, warmup_rounds=0, iterations=1)
    if meter.peak_above_start() is not None:
        benchmark.extra_info["cpu_peak_rss_bytes"] = meter.peak_above_start()
    if model_bytes is not None:
        median_s = benchmark.extra_info.get("do_bench_ms", benchmark.stats.stats.median * 1e3) / 1e3
        benchmark.extra_info.update(model_bytes=int(model_bytes), gbps=model_bytes / median_s / 1e9,
                                    gbps_note="docs/DESIGN.md §4 byte model, best case G = N*d*b")


def not_run(info: dict, needs_bytes: int, name: str, what: str = "dense Â") -> str:
    """Record a provider that would not fit; returns the skip reason ``OOM (needs X): ...``."""
    status, budget = f"OOM (needs {fmt_bytes(needs_bytes)})", memory_budget(DEVICE)
    NOT_RUN.append(dict(info, status=status, needs_bytes=int(needs_bytes), budget_bytes=budget,
                        what=what, group=f"{info['op']} | {info['size']}", name=name))
    return (f"{status}: {what} of {info['size']} exceeds the budget of {fmt_bytes(budget)} "
            f"(computed, not attempted)")
