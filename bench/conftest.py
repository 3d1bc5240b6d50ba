"""pytest hooks and fixtures of the benchmark suite (``pytest bench/``; docs/BENCHMARKS.md).

The helpers live in modules of their own: settings (bench/settings.py), graphs
(bench/graphs.py), providers (bench/baselines.py), timing and memory (bench/measure.py).
"""
from __future__ import annotations

import os

import pytest
import torch

from bench import graphs, settings
from bench.measure import NOT_RUN, PeakRSS
from gnn.data import DatasetNotFoundError

_LOAD = {}


def _benchmark_disabled(config) -> bool:
    try:
        return bool(config.getoption("benchmark_disable"))
    except ValueError:  # pytest-benchmark not loaded
        return False


def _preset(config) -> str:
    try:
        return settings.size_preset(_benchmark_disabled(config))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_configure(config):
    _LOAD["start"] = os.getloadavg()[0]
    if settings.thread_count():
        torch.set_num_threads(settings.thread_count())
    config.addinivalue_line("filterwarnings",
                            "ignore:Sparse CSR tensor support is in beta state:UserWarning")
    config.addinivalue_line("filterwarnings", "ignore:Sparse invariant checks:UserWarning")


def pytest_generate_tests(metafunc):
    """``size`` runs over the preset's size labels; ``dataset`` over its real datasets."""
    if "size" in metafunc.fixturenames:
        labels = settings.size_labels(_preset(metafunc.config))
        metafunc.parametrize("size", labels, ids=labels, scope="module")
    if "dataset" in metafunc.fixturenames:
        names = settings.REAL_SIZES[_preset(metafunc.config)]
        metafunc.parametrize("dataset", names, ids=names, scope="module")


def pytest_benchmark_update_json(config, benchmarks, output_json):
    device = settings.bench_device()
    output_json["gnn_not_run"] = list(NOT_RUN)
    output_json["gnn_config"] = {
        "sizes": _preset(config), "device": str(device), "d": settings.embedding_dim(),
        "target_s": settings.target_seconds(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "cpu_budget_rule": settings.CPU_BUDGET_RULE,
        "budget_bytes": settings.memory_budget(device),
        "loadavg": f"{_LOAD.get('start', float('nan')):.2f} / {os.getloadavg()[0]:.2f}"}


@pytest.fixture(scope="session")
def device() -> torch.device:
    return settings.bench_device()


def _dataset_or_skip(label: str):
    try:
        return graphs.dataset(label)
    except DatasetNotFoundError as exc:
        pytest.skip(f"{label}: {exc} (set $GNN_DATA)")


@pytest.fixture(scope="module")
def split_dataset(size):
    """The :class:`gnn.data.SplitDataset` behind the test's ``size`` label."""
    return _dataset_or_skip(size)


@pytest.fixture(scope="module")
def real_dataset(dataset):
    """The :class:`gnn.data.SplitDataset` of the test's real ``dataset``."""
    return _dataset_or_skip(dataset)


@pytest.fixture(scope="module")
def adjacency(size, split_dataset, device):
    """The normalised training adjacency of ``size`` on the benchmark device."""
    return graphs.graph(size, device)


@pytest.fixture(autouse=True)
def cpu_case_rss(request):
    """Record the measured peak RSS of each whole CPU case (``cpu_case_rss_bytes``, above the
    RSS before the test body): the provider's representation as built, its warm-up call (with
    first-use costs such as library pages) and its working memory; the inputs a module shares
    are set up before and not counted. run_benchmark records the working memory alone."""
    if settings.bench_device().type != "cpu":
        yield
        return
    meter = PeakRSS()
    meter.reset()
    yield
    bench = request.node.funcargs.get("benchmark")
    peak = meter.peak_above_start()
    if bench is not None and peak is not None and "op" in bench.extra_info:
        bench.extra_info["cpu_case_rss_bytes"] = peak
