"""The CPU memory meter (bench.measure.PeakRSS) sees a fresh allocation, and its reset forgets
an earlier, larger one (so that each benchmark case is measured on its own)."""
from __future__ import annotations

import numpy as np
import pytest

from bench.measure import PeakRSS, measure_once

MB = 1 << 20


@pytest.fixture
def meter():
    m = PeakRSS()
    m.reset()
    if not m.available:
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


def test_measure_once_on_the_cpu(meter):
    peak, seconds, _ = measure_once(lambda: touched(48 * MB).sum(), "cpu")
    assert 40 * MB <= peak <= 150 * MB and seconds > 0
