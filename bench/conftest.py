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
    config.addinivalue_line("markers", "float32_only: not parametrised over GNN_BENCH_DTYPES")


def pytest_generate_tests(metafunc):
    """``size`` runs over the preset's size labels, ``dataset`` over its real datasets, ``dtype``
    over GNN_BENCH_DTYPES (float32 alone for a test marked float32_only)."""
    if "size" in metafunc.fixturenames:
        labels = graphs.size_labels(_preset(metafunc.config))
        metafunc.parametrize("size", labels, ids=labels, scope="module")
    if "dataset" in metafunc.fixturenames:
        names = [label for label in graphs.size_labels(_preset(metafunc.config))
                 if graphs.parse_powerlaw(label) is None]
        metafunc.parametrize("dataset", names, ids=names, scope="module")
    if "dtype" in metafunc.fixturenames:
        names = ["float32"] if metafunc.definition.get_closest_marker("float32_only") \
            else measure.DTYPES
        metafunc.parametrize("dtype", [getattr(torch, n) for n in names], ids=names,
                             scope="module")


@pytest.hookimpl(trylast=True)  # after pytest's own reordering
def pytest_collection_modifyitems(items):
    """Each module's cases size by size, then dtype by dtype (pytest's own order interleaves two
    module-scoped parameters, which rebuilds graphs and references again and again)."""
    first_seen = {}

    def key(item):
        params = getattr(item, "callspec", None)
        params = params.params if params is not None else {}
        return tuple(first_seen.setdefault(x, len(first_seen))
                     for x in (item.module, params.get("size"), params.get("dtype")))

    items.sort(key=key)


def pytest_runtest_logreport(report):
    """A failed test (a check outside its tolerance, an error) goes into the json's gnn_failed."""
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr)
        measure.FAILED.append({"test": report.nodeid, "when": report.when,
                               "error": (message.strip().splitlines() or [""])[0][:300]})


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["gnn_not_run"] = list(measure.NOT_RUN)
    output_json["gnn_failed"] = list(measure.FAILED)
    output_json["gnn_config"] = {
        "sizes": _preset(config), "device": str(measure.DEVICE), "d": measure.DIM,
        "dtypes": measure.DTYPES, "thresholds": measure.THRESHOLDS,
        "recompute_s": measure.RECOMPUTE_S,
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
