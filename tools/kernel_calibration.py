"""The static model against a GPU measurement: each of our ops in a device run's kernels.json (a
pytest-benchmark json of bench/test_sparse_ops.py on CUDA) beside tools.kernel_static's estimate
for the same graph, d and dtype, and the ratio measured / estimate. Where the ratio sits, op by
op, says whether the H200 model (tools/kernel_model.py) predicted right and which assumption to
revisit (the L2 bandwidth first: it is the one unpublished figure).

    python -m tools.kernel_calibration results/gpu/kernels.json --out results/gpu/calibration.md

The kernels' SASS comes from a static report (``--report``, default the committed
results/kernel_static/after/report.json; ``compile`` compiles here); each measured size's graph
is rebuilt here through bench.graphs (the real datasets need $GNN_DATA).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from bench.measure import fmt_us, table
from tools import kernel_static as KS

REPORT = Path("results/kernel_static/after/report.json")
# (suite op, provider) -> the static report's ops that one call runs
OPS = {("spmm", "ours"): ("csr_spmm",), ("spmm_fwd_bwd", "ours"): ("csr_spmm", "csr_spmm"),
       ("ngcf_layer_fwd", "ours_fused"): ("ngcf_fwd_fused",),
       ("ngcf_layer_fwd_bwd", "ours_fused"): ("ngcf_fwd_fused", "ngcf_bwd_fused"),
       ("ngcf_layer_fwd", "ours_spmm+torch"): ("ngcf_fwd_unfused",),
       ("ngcf_layer_fwd_bwd", "ours_spmm+torch"): ("ngcf_fwd_unfused", "ngcf_bwd_unfused")}


def measured_records(path: Path) -> list:
    """``(op, provider, size, dtype, d, seconds)`` of our ops' timed results in a suite json."""
    from bench.plot import load_suite_json  # json only: no torch, no report

    return [(r["op"], r["provider"], r["size"], r["dtype"], r["d"], r["seconds"])
            for r in load_suite_json(path)[0]
            if (r["op"], r["provider"]) in OPS and r.get("seconds") and r.get("status") == "ok"]


def estimates(records: list, report: str, jobs: int, cache: Path) -> dict:
    """``{(size, static op, dtype, d): (estimate µs, serial µs)}`` for every measured size."""
    out = {}
    for d in sorted({r[4] for r in records}):
        dtypes = sorted({r[3] for r in records if r[4] == d})
        cases = None if report == "compile" else [
            c for c in json.loads(Path(report).read_text())["cases"]
            if c["arch"] == 90 and c["d"] == d and c["dtype"] in dtypes]
        for size in sorted({r[2] for r in records if r[4] == d}):
            g = KS.load_graph(size, size, cache)
            rep = KS.run(None, [d], dtypes, [90], list(KS.KERNELS), jobs, cache, {size: g}, cases)
            cases = rep["cases"]  # compiled once, evaluated on every graph
            out.update({(size, o["op"], o["dtype"], d): (o[f"estimate_us_{size}"], o[f"serial_us_{size}"])
                        for o in rep["ops"]})
    return out


def calibration_rows(records: list, est: dict) -> list:
    """One row per measured result: measured µs, estimate–serial µs, measured / estimate."""
    rows = []
    for op, provider, size, dtype, d, seconds in records:
        parts = [est.get((size, o, dtype, d)) for o in OPS[(op, provider)]]
        got = seconds * 1e6
        if None in parts or any(p[0] is None for p in parts):
            rows.append([op, provider, dtype, size, fmt_us(got), "not estimated", "–"])
            continue
        e, s = sum(p[0] for p in parts), sum(p[1] for p in parts)
        rows.append([op, provider, dtype, size, fmt_us(got), f"{fmt_us(e)}–{fmt_us(s)}",
                     f"{got / e:.2f}×"])
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("measured", type=Path, help="a device run's kernels.json")
    p.add_argument("--out", type=Path, required=True, help="markdown file to write")
    p.add_argument("--report", default=str(REPORT), help="a static report.json, or 'compile'")
    p.add_argument("--jobs", type=int, default=os.cpu_count())
    p.add_argument("--cache", type=Path, default=KS.CACHE)
    a = p.parse_args(argv)
    records = measured_records(a.measured)
    if not records:
        raise SystemExit(f"tools.kernel_calibration: no timed result of our ops in {a.measured}")
    rows = calibration_rows(records, estimates(records, a.report, a.jobs, a.cache))
    text = [f"Measured (`{a.measured}`) against the static model (`python -m tools.kernel_static`, "
            f"SASS from `{a.report}`): µs per call; estimate–serial = all overlapped – nothing "
            "overlapped (tools/kernel_model.py).", ""]
    text += table(["op", "provider", "dtype", "size", "measured µs", "estimate–serial µs",
                   "measured / estimate"], rows)
    a.out.write_text("\n".join(text) + "\n")
    print(f"{len(rows)} results: {a.out}")


if __name__ == "__main__":
    main()
