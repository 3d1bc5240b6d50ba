"""What a benchmark run measures and where: read once from the environment (docs/BENCHMARKS.md).

    GNN_BENCH_SIZES     tiny | cpu | gpu   (default: gpu on CUDA, cpu otherwise; tiny under
                        ``pytest --benchmark-disable``, so the CI smoke run stays quick)
    GNN_BENCH_POWERLAW  extra power-law sizes "N:nnz,N:nnz" (e.g. "1000000:100000000")
    GNN_BENCH_DEVICE    cpu | cuda         (default: cuda when available)
    GNN_BENCH_DIM       embedding width d  (default 64)
    GNN_BENCH_TARGET_S  seconds of timed rounds per benchmark (default 0.3 CPU, 1.0 GPU)
    GNN_BENCH_THREADS   torch.set_num_threads for the run (default: torch's own choice)
    GNN_BENCH_BUDGET    bytes a dense provider may use (default: min(MemAvailable/4, 4 GiB) on
                        the CPU, 80 % of the free memory on CUDA)

The datasets come from ``gnn.data.data_root()`` (``$GNN_DATA``), like everywhere else.
"""
from __future__ import annotations

import os
import platform
from typing import List

import torch

AVG_DEGREE = 20  # nnz = 20·N for the power-law sizes (Gowalla: 1.62M / 70.8k ≈ 23)

#: Power-law node counts per size preset (nnz = AVG_DEGREE · N), after the real datasets.
POWERLAW_SIZES = {
    "tiny": [2_000],
    "cpu": [10_000, 30_000, 100_000],
    "gpu": [10_000, 100_000, 1_000_000],
}
REAL_SIZES = {"tiny": ["ml-latest-small"], "cpu": ["ml-latest-small", "gowalla"],
              "gpu": ["ml-latest-small", "gowalla"]}
CPU_BUDGET_RULE = "min(MemAvailable/4, 4 GiB)"


def bench_device() -> torch.device:
    name = os.environ.get("GNN_BENCH_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def size_preset(benchmark_disabled: bool = False) -> str:
    """The size preset: ``$GNN_BENCH_SIZES``, else tiny (timing off), gpu (CUDA) or cpu."""
    preset = os.environ.get("GNN_BENCH_SIZES")
    if preset:
        if preset not in POWERLAW_SIZES:
            raise ValueError(f"GNN_BENCH_SIZES must be one of {sorted(POWERLAW_SIZES)}, "
                             f"but got {preset!r}")
        return preset
    if benchmark_disabled:
        return "tiny"
    return "gpu" if bench_device().type == "cuda" else "cpu"


def size_labels(preset: str) -> List[str]:
    """Every size label of a preset: the real datasets, then the power-law graphs."""
    from bench.graphs import powerlaw_label

    labels = list(REAL_SIZES[preset])
    labels += [powerlaw_label(n) for n in POWERLAW_SIZES[preset]]
    extra = os.environ.get("GNN_BENCH_POWERLAW", "").strip()
    for item in filter(None, extra.split(",")):
        n, nnz = item.split(":")
        labels.append(powerlaw_label(int(float(n)), int(float(nnz))))
    return labels


def embedding_dim() -> int:
    return int(os.environ.get("GNN_BENCH_DIM", "64"))


def target_seconds() -> float:
    default = "1.0" if bench_device().type == "cuda" else "0.3"
    return float(os.environ.get("GNN_BENCH_TARGET_S", default))


def thread_count() -> int | None:
    value = os.environ.get("GNN_BENCH_THREADS")
    return int(value) if value else None


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
    available = 16 * 2**30
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(min(available // 4, 4 * 2**30))
