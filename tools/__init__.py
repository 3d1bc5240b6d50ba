"""Tools that are not benchmarks, run from the repository root (docs/BENCHMARKS.md lists them):

* ``python -m tools.kernel_static``: the static kernel report (compiled for sm_90 / sm_80 without
  a GPU; registers, spills, occupancy, SASS loops, an H200 roofline; docs/KERNELS.md), and
  ``python -m tools.kernel_calibration``: its estimates beside a device run's measured times;
* ``python -m tools.step_profile``: where a CPU training step's time goes (a one-off investigation);
* ``python -m tools.partition_report``: what partitioning costs per process (docs/DISTRIBUTED.md).

They read graphs through bench.graphs; bench/ never imports them.
"""
