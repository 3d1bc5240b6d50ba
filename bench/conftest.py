"""pytest hooks and fixtures of the benchmark suite (``pytest bench/``; docs/BENCHMARKS.md)."""
from __future__ import annotations

import os

import pytest
import torch

from bench import graphs, measure
from gnn.data import DatasetNotFoundError

_RUN = {}  # the size preset and the load average at the start


def pytest_configure(config):
    try:
        preset = graphs.size_preset(bool(config.getoption("benchmark_disable", False)))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    _RUN.update(preset=preset, labels=graphs.size_labels(preset), load=os.getloadavg()[0])
    if measure.THREADS:
        torch.set_num_threads(measure.THREADS)
    for message in ("Sparse CSR tensor support is in beta state", "Sparse invariant checks"):
        config.addinivalue_line("filterwarnings", f"ignore:{message}:UserWarning")
    config.addinivalue_line("markers", "float32_only: not parametrised over GNN_BENCH_DTYPES")
    config.addinivalue_line("markers", "real_data: the preset's real datasets only")


def pytest_generate_tests(metafunc):
    """``size`` runs over the preset's size labels (the real datasets alone for a module marked
    real_data); a test that takes ``dtype`` too runs over (size, dtype) pairs, dtype by dtype
    (GNN_BENCH_DTYPES; for a test marked float32_only float32 alone: the same first pairs).
    Indirect parameters of module-scoped fixtures, as pytest groups only those: a module's tests
    run case by case, and each case's graph, inputs and references are built once."""
    labels = [label for label in _RUN["labels"] if graphs.parse_powerlaw(label) is None
              or not metafunc.definition.get_closest_marker("real_data")]
    if "dtype" in metafunc.fixturenames:
        dtypes = ["float32"] if metafunc.definition.get_closest_marker("float32_only") \
            else measure.DTYPES
        metafunc.parametrize(("size", "dtype"), [(s, d) for d in dtypes for s in labels],
                             indirect=True, scope="module")
    elif "size" in metafunc.fixturenames:
        metafunc.parametrize("size", labels, indirect=True, scope="module")


@pytest.fixture(scope="module")
def size(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def dtype(request) -> torch.dtype:
    return getattr(torch, request.param)


def pytest_runtest_logreport(report):
    """A failed test (a check outside its tolerance, an error) goes into the json's gnn_failed."""
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr)
        measure.FAILED.append({"test": report.nodeid, "when": report.when,
                               "error": (message.strip().splitlines() or [""])[0][:300]})


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json.update(gnn_not_run=list(measure.NOT_RUN), gnn_failed=list(measure.FAILED))
    output_json["gnn_config"] = {
        "sizes": _RUN["preset"], "device": str(measure.DEVICE), "d": measure.DIM,
        "dtypes": measure.DTYPES, "thresholds": measure.THRESHOLDS,
        "recompute_s": measure.RECOMPUTE_S, "target_s": measure.TARGET_S,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu_budget_rule": measure.CPU_BUDGET_RULE,
        "budget_bytes": measure.memory_budget(measure.DEVICE),
        "loadavg": f"{_RUN['load']:.2f} / {os.getloadavg()[0]:.2f}"}


@pytest.fixture(scope="session")
def device() -> torch.device:
    return measure.DEVICE


@pytest.fixture(scope="module")
def split_dataset(size):
    """The split dataset behind ``size`` (its cases skipped, saying why, without the data)."""
    try:
        return graphs.dataset(size)
    except DatasetNotFoundError as exc:
        pytest.skip(f"{size}: {exc} (set $GNN_DATA)")


@pytest.fixture(scope="module")
def adjacency(size, split_dataset, device):
    """The normalised training adjacency of ``size`` on the benchmark device."""
    return graphs.graph(size, device)


@pytest.fixture(autouse=True)
def cpu_case_rss(request):
    """``cpu_case_rss_bytes``: the peak RSS of the whole CPU case above the RSS before its body
    (the representation as built, the warm-up call, the working memory; shared inputs excluded)."""
    meter = measure.PeakRSS()
    if measure.DEVICE.type == "cpu":
        meter.reset()
    yield
    bench, peak = request.node.funcargs.get("benchmark"), meter.peak_above_start()
    if bench is not None and peak is not None and "op" in bench.extra_info:
        bench.extra_info["cpu_case_rss_bytes"] = peak
