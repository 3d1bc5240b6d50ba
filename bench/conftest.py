"""pytest hooks and fixtures of the benchmark suite (``pytest bench/``; docs/BENCHMARKS.md)."""
from __future__ import annotations

import os

import pytest
import torch

from bench import graphs, measure
from gnn.data import DatasetNotFoundError

_LOAD = {}


def _preset(config) -> str:
    try:
        disabled = bool(config.getoption("benchmark_disable"))
    except ValueError:  # pytest-benchmark not loaded
        disabled = False
    try:
        return graphs.size_preset(disabled)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_configure(config):
    _LOAD["start"] = os.getloadavg()[0]
    if measure.THREADS:
        torch.set_num_threads(measure.THREADS)
    for message in ("Sparse CSR tensor support is in beta state", "Sparse invariant checks"):
        config.addinivalue_line("filterwarnings", f"ignore:{message}:UserWarning")


def pytest_generate_tests(metafunc):
    """``size`` runs over the preset's size labels; ``dataset`` over its real datasets."""
    if "size" in metafunc.fixturenames:
        labels = graphs.size_labels(_preset(metafunc.config))
        metafunc.parametrize("size", labels, ids=labels, scope="module")
    if "dataset" in metafunc.fixturenames:
        names = graphs.REAL_SIZES[_preset(metafunc.config)]
        metafunc.parametrize("dataset", names, ids=names, scope="module")


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["gnn_not_run"] = list(measure.NOT_RUN)
    output_json["gnn_config"] = {
        "sizes": _preset(config), "device": str(measure.DEVICE), "d": measure.DIM,
        "target_s": measure.TARGET_S, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "cpu_budget_rule": measure.CPU_BUDGET_RULE,
        "budget_bytes": measure.memory_budget(measure.DEVICE),
        "loadavg": f"{_LOAD.get('start', float('nan')):.2f} / {os.getloadavg()[0]:.2f}"}


@pytest.fixture(scope="session")
def device() -> torch.device:
    return measure.DEVICE


def dataset_or_skip(label: str):
    try:
        return graphs.dataset(label)
    except DatasetNotFoundError as exc:
        pytest.skip(f"{label}: {exc} (set $GNN_DATA)")


@pytest.fixture(scope="module")
def split_dataset(size):
    return dataset_or_skip(size)


@pytest.fixture(scope="module")
def real_dataset(dataset):
    return dataset_or_skip(dataset)


@pytest.fixture(scope="module")
def adjacency(size, split_dataset, device):
    """The normalised training adjacency of ``size`` on the benchmark device."""
    return graphs.graph(size, device)


@pytest.fixture(autouse=True)
def cpu_case_rss(request):
    """``cpu_case_rss_bytes``: the peak RSS of the whole CPU case above the RSS before its body
    (the representation as built, the warm-up call, the working memory; shared inputs excluded)."""
    if measure.DEVICE.type != "cpu":
        yield
        return
    meter = measure.PeakRSS()
    meter.reset()
    yield
    bench, peak = request.node.funcargs.get("benchmark"), meter.peak_above_start()
    if bench is not None and peak is not None and "op" in bench.extra_info:
        bench.extra_info["cpu_case_rss_bytes"] = peak
