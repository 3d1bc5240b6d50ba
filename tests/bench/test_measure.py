"""The suite's measurements and knobs: the CPU memory meter (bench.measure.PeakRSS) sees a fresh
allocation and its reset forgets an earlier, larger one (each case is measured on its own); the
accuracy check holds each dtype to its tolerance; each knob of the environment changes which
benchmarks the suite generates."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.measure import PeakRSS, check_close

ROOT = Path(__file__).resolve().parents[2]

MB = 1 << 20


@pytest.fixture
def meter():
    m = PeakRSS()
    m.reset()
    if m.start is None:
        pytest.skip("no /proc/self/status VmHWM or clear_refs here")
    return m


def touched(nbytes: int) -> np.ndarray:
    a = np.empty(nbytes // 8)
    a.fill(1.0)  # resident only once written
    return a


def test_peak_sees_an_allocation(meter):
    a = touched(96 * MB)
    assert 90 * MB <= meter.peak_above_start() <= 200 * MB
    del a


def test_reset_forgets_an_earlier_peak(meter):
    big = touched(160 * MB)
    del big
    meter.reset()
    small = touched(24 * MB)
    assert 20 * MB <= meter.peak_above_start() < 100 * MB
    del small


def test_check_records_the_error_and_holds_each_dtype_to_its_tolerance():
    ref = torch.randn(50, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    noise = torch.randn(50, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    info = {"op": "spmm", "provider": "p", "size": "s", "dtype": "bfloat16"}
    close = ref + 0.01 * ref.norm() / noise.norm() * noise  # rel err 1e-2
    check_close(info, [close.bfloat16()], [ref], rtol=1e-4, atol=1e-5)
    assert 5e-3 < info["rel_err"] < 2e-2
    with pytest.raises(AssertionError, match="rel err 3.0"):
        check_close(info, [(ref + 0.3 * ref.norm() / noise.norm() * noise).bfloat16()], [ref],
                    rtol=1e-4, atol=1e-5)
    info["dtype"] = "float32"  # elementwise: a rel err of 1e-2 fails
    with pytest.raises(AssertionError):
        check_close(info, [close.float()], [ref], rtol=1e-4, atol=1e-5)
    check_close(info, [ref.float(), ref.float()], [ref, ref], rtol=1e-4, atol=1e-5)
    assert info["rel_err"] < 1e-7


def collected(**env) -> list:
    """The ids of bench/test_sparse_ops.py's tests under the suite's knobs ``env``."""
    env = dict(os.environ, GNN_BENCH_SIZES="powerlaw-N2000,powerlaw-N300-nnz2000", **env)
    res = subprocess.run([sys.executable, "-m", "pytest", "bench/test_sparse_ops.py", "-q",
                          "--collect-only", "-p", "no:cacheprovider"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return [line for line in res.stdout.splitlines() if "::" in line]


def test_knobs_choose_the_benchmarks():
    default = collected()
    assert {i.split("[")[1].split("-float32")[0] for i in default} == {
        "powerlaw-N2000", "powerlaw-N300-nnz2000"}, "GNN_BENCH_SIZES as a list of labels"
    assert not [i for i in default if "bfloat16" in i or "threshold" in i or "recomputed" in i]
    knobs = collected(GNN_BENCH_DTYPES="float32,bfloat16", GNN_BENCH_THRESHOLDS="4,off",
                      GNN_BENCH_RECOMPUTE_S="1")
    assert "bench/test_sparse_ops.py::test_spmm[powerlaw-N2000-bfloat16-ours]" in knobs
    assert "bench/test_sparse_ops.py::test_ngcf_threshold[powerlaw-N2000-float32-off]" in knobs
    assert "bench/test_sparse_ops.py::test_spmm_threshold[powerlaw-N2000-float32-4]" in knobs
    assert not [i for i in knobs if "threshold" in i and "bfloat16" in i], "sweeps: float32 only"
    assert ("bench/test_sparse_ops.py::test_ngcf_layer_fwd_bwd"
            "[powerlaw-N300-nnz2000-bfloat16-ours_fused (S recomputed)]") in knobs
