"""tools.kernel_calibration: a suite json's timed results of our ops beside the static model's
estimate for the same graph (the committed report's SASS, a small power-law graph)."""
import json

import pytest

from tools import kernel_calibration as C
from tools import kernel_static as KS

SIZE, D = "powerlaw-N600", 64


def suite_json(path, results):
    benchmarks = [{"extra_info": dict(op=op, provider=prov, size=SIZE, dtype=dt, d=D),
                   "stats": {"median": s}} for op, prov, dt, s in results]
    path.write_text(json.dumps({"benchmarks": benchmarks}))
    return path


@pytest.fixture(scope="module")
def static_ops(tmp_path_factory):
    """The static report's ops on the graph, computed here without the tool under test."""
    cache = tmp_path_factory.mktemp("cache")
    cases = [c for c in json.loads(C.REPORT.read_text())["cases"]
             if c["arch"] == 90 and c["d"] == D and c["dtype"] == "float32"]
    g = KS.load_graph(SIZE, SIZE, cache)
    rep = KS.run(None, [D], ["float32"], [90], list(KS.KERNELS), 1, cache, {SIZE: g}, cases)
    return {o["op"]: o[f"estimate_us_{SIZE}"] for o in rep["ops"] if o["dtype"] == "float32"}, cache


def test_rows_put_the_measured_time_over_the_ops_estimate(tmp_path, static_ops):
    ops, cache = static_ops
    path = suite_json(tmp_path / "k.json", [
        ("spmm", "ours", "float32", 3e-5), ("spmm", "torch_csr", "float32", 1e-5),
        ("spmm_fwd_bwd", "ours", "float32", 8e-5),
        ("ngcf_layer_fwd_bwd", "ours_fused", "float32", 4e-4)])
    records = C.measured_records(path)
    assert {r[:2] for r in records} == {("spmm", "ours"), ("spmm_fwd_bwd", "ours"),
                                        ("ngcf_layer_fwd_bwd", "ours_fused")}  # not cuSPARSE's
    rows = {(r[0], r[1]): r for r in C.calibration_rows(records, C.estimates(
        records, str(C.REPORT), 1, cache))}
    expected = {("spmm", "ours"): 30 / ops["csr_spmm"],
                ("spmm_fwd_bwd", "ours"): 80 / (2 * ops["csr_spmm"]),  # the backward is one more SpMM
                ("ngcf_layer_fwd_bwd", "ours_fused"): 400 / (ops["ngcf_fwd_fused"]
                                                             + ops["ngcf_bwd_fused"])}
    for key, ratio in expected.items():
        assert rows[key][-1] == f"{ratio:.2f}×", key


def test_cli_writes_the_table_and_refuses_a_json_without_our_ops(tmp_path, static_ops):
    out, cache = tmp_path / "cal.md", str(static_ops[1])
    C.main([str(suite_json(tmp_path / "k.json", [("spmm", "ours", "float32", 3e-5)])),
            "--out", str(out), "--jobs", "1", "--cache", cache])
    assert "| spmm | ours | float32 | powerlaw-N600 |" in out.read_text()
    with pytest.raises(SystemExit, match="no timed result"):
        C.main([str(suite_json(tmp_path / "n.json", [("spmm", "dense", "float32", 1e-3)])),
                "--out", str(out), "--cache", cache])
