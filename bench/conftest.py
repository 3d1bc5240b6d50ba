"""Shared machinery of the benchmark suite (``pytest bench/``; DESIGN.md §6).

Sizes, devices and budgets come from the environment, so that pytest.ini stays untouched:

    GNN_BENCH_SIZES     tiny | cpu | gpu   (default: gpu on CUDA, cpu otherwise, tiny under
                        --benchmark-disable so the smoke run in .ci/run stays quick)
    GNN_BENCH_POWERLAW  extra power-law sizes "N:nnz,N:nnz" (e.g. "1000000:100000000")
    GNN_BENCH_DEVICE    cpu | cuda         (default: cuda when available)
    GNN_BENCH_DIM       embedding width d  (default 64)
    GNN_BENCH_TARGET_S  seconds of timed rounds per benchmark (default 0.3 CPU, 1.0 GPU)
    GNN_BENCH_THREADS   torch.set_num_threads for the run (default: torch's own choice)
    GNN_BENCH_BUDGET    bytes a dense provider may use (default: min(MemAvailable/4, 4 GiB) on
                        the CPU, 80 % of the free memory on CUDA)
    GNN_DATA            folder with ml-latest-small/ and gowalla/ (default ../shared/data)

Every result carries ``extra_info`` with op, provider, size, device, dtype, d, N, nnz and
  * ``repr_bytes``, the bytes of the adjacency representation the provider works from
    (CSR arrays; the dense N×N matrix; the edge list) and, for gather–scatter,
    ``materialised_bytes`` (the nnz×d message tensor);
  * CUDA: ``peak_mem_bytes`` above the inputs (reset_peak_memory_stats / max_memory_allocated)
    and ``do_bench_ms``, the median of ``triton.testing.do_bench``;
  * SpMM: ``model_bytes`` and ``gbps`` by the byte model of DESIGN.md §4.
A provider that cannot fit (dense Â beyond the memory budget) is not attempted: the test is
skipped with reason "OOM (needs X GB)" and the record goes into the json's ``gnn_not_run``
list, which scripts/bench_report.py shows in its tables.
"""
from __future__ import annotations

import os
import platform
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import pytest
import torch

from bench.powerlaw import powerlaw_interactions

PROJECT_ROOT = Path(__file__).resolve().parents[1]
AVG_DEGREE = 20  # nnz = 20·N for the power-law sizes (Gowalla: 1.62M / 70.8k ≈ 23)

# Power-law node counts per size preset; nnz = AVG_DEGREE · N.
POWERLAW_SIZES = {
    "tiny": [2_000],
    "cpu": [10_000, 30_000, 100_000],
    "gpu": [10_000, 100_000, 1_000_000],
}
REAL_SIZES = {"tiny": ["ml-latest-small"], "cpu": ["ml-latest-small", "gowalla"],
              "gpu": ["ml-latest-small", "gowalla"]}

_NOT_RUN: List[dict] = []


# --------------------------------------------------------------------------- configuration
def _benchmark_disabled(config) -> bool:
    try:
        return bool(config.getoption("benchmark_disable"))
    except ValueError:
        return False


def bench_device() -> torch.device:
    name = os.environ.get("GNN_BENCH_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def size_preset(config=None) -> str:
    preset = os.environ.get("GNN_BENCH_SIZES")
    if preset:
        if preset not in POWERLAW_SIZES:
            raise pytest.UsageError(f"GNN_BENCH_SIZES must be one of {sorted(POWERLAW_SIZES)}, "
                                    f"but got {preset!r}")
        return preset
    if config is not None and _benchmark_disabled(config):
        return "tiny"
    return "gpu" if bench_device().type == "cuda" else "cpu"


def embedding_dim() -> int:
    return int(os.environ.get("GNN_BENCH_DIM", "64"))


def target_seconds() -> float:
    default = "1.0" if bench_device().type == "cuda" else "0.3"
    return float(os.environ.get("GNN_BENCH_TARGET_S", default))


def data_root() -> Path:
    env = os.environ.get("GNN_DATA")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "data"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()} CPU ({torch.get_num_threads()} threads)"


def memory_budget(device: torch.device) -> int:
    """Bytes a single dense provider may allocate.

    CPU: min(MemAvailable / 4, 4 GiB), so that one benchmark never pushes the machine into swap.
    CUDA: 80 % of the free device memory. ``$GNN_BENCH_BUDGET`` (bytes) overrides both.
    """
    if os.environ.get("GNN_BENCH_BUDGET"):
        return int(float(os.environ["GNN_BENCH_BUDGET"]))
    if device.type == "cuda":
        torch.cuda.empty_cache()  # blocks cached from an earlier dense provider count as free
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.8)
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except OSError:
        pass
    if available is None:
        available = 16 * 2**30
    return int(min(available // 4, 4 * 2**30))


def size_labels(config) -> List[str]:
    """Every size label of the current preset: real datasets, then power-law graphs."""
    preset = size_preset(config)
    labels = list(REAL_SIZES[preset])
    labels += [f"powerlaw-N{n}" for n in POWERLAW_SIZES[preset]]
    extra = os.environ.get("GNN_BENCH_POWERLAW", "").strip()
    if extra:
        for item in extra.split(","):
            n, nnz = item.split(":")
            labels.append(f"powerlaw-N{int(float(n))}-nnz{int(float(nnz))}")
    return labels


def pytest_generate_tests(metafunc):
    """``size`` parametrises over the preset's sizes (ids are the labels)."""
    if "size" in metafunc.fixturenames:
        labels = size_labels(metafunc.config)
        metafunc.parametrize("size", labels, ids=labels, scope="module")


_LOAD: Dict[str, float] = {}


def pytest_configure(config):
    _LOAD["start"] = os.getloadavg()[0]
    if os.environ.get("GNN_BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["GNN_BENCH_THREADS"]))
    config.addinivalue_line("filterwarnings",
                            "ignore:Sparse CSR tensor support is in beta state:UserWarning")
    config.addinivalue_line("filterwarnings", "ignore:Sparse invariant checks:UserWarning")



# --------------------------------------------------------------------------- datasets / graphs
@lru_cache(maxsize=None)
def real_interactions(name: str):
    """``(user, item, n_users, n_items)`` of all interactions of a real dataset (duplicates kept).

    ml-latest-small: every rating is an interaction (610 users, 9,724 rated movies);
    gowalla: train.txt of the NGCF split. Skips when the file is absent.
    """
    root = data_root()
    if name == "ml-latest-small":
        path = root / name / "ratings.csv"
        if not path.exists():
            pytest.skip(f"real dataset file not found: {path} (set $GNN_DATA)")
        raw = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(0, 1), dtype=np.int64)
        _, user = np.unique(raw[:, 0], return_inverse=True)
        _, item = np.unique(raw[:, 1], return_inverse=True)
        return user.ravel(), item.ravel(), int(user.max()) + 1, int(item.max()) + 1
    if name == "gowalla":
        user, item = read_gowalla("train.txt")
        return user, item, int(user.max()) + 1, int(item.max()) + 1
    raise KeyError(name)


@lru_cache(maxsize=None)
def read_gowalla(filename: str):
    path = data_root() / "gowalla" / filename
    if not path.exists():
        pytest.skip(f"real dataset file not found: {path} (set $GNN_DATA)")
    users, items = [], []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue
            ids = np.array(parts, dtype=np.int64)
            users.append(np.full(ids.size - 1, ids[0]))
            items.append(ids[1:])
    return np.concatenate(users), np.concatenate(items)


@lru_cache(maxsize=None)
def interactions(label: str):
    if label.startswith("powerlaw-"):
        parts = label.split("-")[1:]
        n = int(parts[0][1:])
        nnz = int(parts[1][3:]) if len(parts) > 1 else AVG_DEGREE * n
        return powerlaw_interactions(n, nnz, seed=0)
    return real_interactions(label)


@lru_cache(maxsize=None)
def cpu_graph(label: str, norm: str = "sym", self_loops: bool = False):
    from gnn.graph import build_adjacency

    user, item, n_users, n_items = interactions(label)
    return build_adjacency(user, item, n_users, n_items, norm=norm, self_loops=self_loops)


_DEVICE_GRAPHS: Dict[tuple, object] = {}


def graph(label: str, device: torch.device, **kwargs):
    """The normalised adjacency of a size label, on ``device`` (cached for the session)."""
    key = (label, str(device), tuple(sorted(kwargs.items())))
    if key not in _DEVICE_GRAPHS:
        _DEVICE_GRAPHS.clear() if device.type == "cuda" else None  # one graph on the GPU at a time
        _DEVICE_GRAPHS[key] = cpu_graph(label, **kwargs).to(device)
    return _DEVICE_GRAPHS[key]


# --------------------------------------------------------------------------- byte model
def spmm_model_bytes(n: int, nnz: int, d: int, elem: int) -> int:
    """DESIGN.md §4: ``4(N+1) + nnz·(4+4) + G + N·d·b`` with G = N·d·b, the best case
    (each row of x gathered once; the worst case is G = nnz·d·b)."""
    return 4 * (n + 1) + nnz * 8 + 2 * n * d * elem


def fmt_gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e8 else f"{nbytes / 1e9:.3f} GB"


# --------------------------------------------------------------------------- running
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def base_info(op: str, provider: str, size: str, adj, d: int, dtype: torch.dtype,
              device: torch.device) -> dict:
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
    above the inputs and the ``triton.testing.do_bench`` median are recorded.
    ``info["repr_bytes"]`` (the provider's representation) is set by the caller.
    ``warmup=False`` (CPU only; for calls known to take seconds) times one single call instead.
    """
    benchmark.group = f"{info['op']} | {info['size']}"
    benchmark.extra_info.update(info)
    if device.type == "cuda":
        def timed():
            out = fn()
            torch.cuda.synchronize(device)
            return out
    else:
        timed = fn
    if benchmark.disabled or (not warmup and device.type == "cpu"):
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
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        timed()
        benchmark.extra_info["peak_mem_bytes"] = int(torch.cuda.max_memory_allocated(device) - base)
        try:
            import triton.testing

            benchmark.extra_info["do_bench_ms"] = float(
                triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))
        except Exception as exc:  # noqa: BLE001 - recorded, not fatal
            benchmark.extra_info["do_bench_error"] = repr(exc)[:200]
    low = 1 if first > 1.0 else min_rounds
    rounds = int(max(low, min(max_rounds, target_seconds() / max(first, 1e-6))))
    benchmark.pedantic(timed, rounds=rounds, warmup_rounds=0, iterations=1)
    if model_bytes is not None:
        benchmark.extra_info["model_bytes"] = int(model_bytes)
        median_s = benchmark.stats.stats.median
        if "do_bench_ms" in benchmark.extra_info:
            median_s = benchmark.extra_info["do_bench_ms"] / 1e3
        benchmark.extra_info["gbps"] = model_bytes / median_s / 1e9
        benchmark.extra_info["gbps_note"] = "DESIGN.md §4 byte model, best case G = N*d*b"


def not_run(benchmark, info: dict, needs_bytes: int, what: str = "dense Â") -> None:
    """Record a provider that would not fit, then skip: ``OOM (needs X GB)``."""
    status = f"OOM (needs {fmt_gb(needs_bytes)})"
    record = dict(info, status=status, needs_bytes=int(needs_bytes),
                  budget_bytes=memory_budget(bench_device()), what=what,
                  group=f"{info['op']} | {info['size']}", name=benchmark.name)
    _NOT_RUN.append(record)
    pytest.skip(f"{status}: {what} of {info['size']} exceeds the budget of "
                f"{fmt_gb(record['budget_bytes'])} (computed, not attempted)")


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["gnn_not_run"] = list(_NOT_RUN)
    output_json["gnn_config"] = {"sizes": size_preset(config), "device": str(bench_device()),
                                 "d": embedding_dim(), "target_s": target_seconds(),
                                 "torch": torch.__version__, "threads": torch.get_num_threads(),
                                 "cpu_budget_rule": "min(MemAvailable/4, 4 GiB)",
                                 "budget_bytes": memory_budget(bench_device()),
                                 "loadavg": f"{_LOAD.get('start', float('nan')):.2f} / "
                                            f"{os.getloadavg()[0]:.2f}"}


@pytest.fixture(scope="session")
def device() -> torch.device:
    return bench_device()


def optional(module: str, attr: Optional[str] = None):
    """``module.attr`` or a skip naming what is missing."""
    mod = pytest.importorskip(module, reason=f"{module} is not available yet")
    if attr is None:
        return mod
    if not hasattr(mod, attr):
        pytest.skip(f"{module}.{attr} is not available yet")
    return getattr(mod, attr)
