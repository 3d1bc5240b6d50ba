"""bench.report on a small synthetic pytest-benchmark json, and the device run's stage planning
(kept from rotting; the dry run itself is test_device_run.py)."""
from __future__ import annotations

import json

import pytest

from bench import device_run, report


def _record(provider, size, n, seconds, repr_bytes, **extra):
    info = {"op": "spmm", "provider": provider, "size": size, "device": "cpu", "dtype": "float32",
            "d": 64, "N": n, "nnz": 20 * n, "repr_bytes": repr_bytes, **extra}
    return {"name": f"test_spmm[{size}-{provider}]", "extra_info": info,
            "stats": {"median": seconds, "rounds": 3}}


@pytest.mark.parametrize("with_plot", [False, True])
def test_report_tables_plot_and_docs(tmp_path, with_plot):
    if with_plot:
        pytest.importorskip("matplotlib", reason="matplotlib (optional extra 'plot') not installed")
    oom = dict(_record("dense", "powerlaw-N10000", 10_000, None, 4e8)["extra_info"],
               status="OOM (needs 400 MB)", needs_bytes=400_000_000)
    (tmp_path / "results.json").write_text(json.dumps({"benchmarks": [
        _record("ours", "powerlaw-N1000", 1000, 1e-4, 12_000, gbps=1.5),
        _record("ours", "powerlaw-N10000", 10_000, 1e-3, 120_000, gbps=1.6),
        _record("dense", "powerlaw-N1000", 1000, 1e-2, 4_000_000)], "gnn_not_run": [oom]}))
    doc = tmp_path / "BENCH.md"
    doc.write_text("intro\n<!-- bench:cpu:start -->\nold\n<!-- bench:cpu:end -->\noutro\n")
    argv = [str(tmp_path / "results.json"), "--out", str(tmp_path / "out"),
            "--update-docs", str(doc)]
    assert report.main(argv + ([] if with_plot else ["--no-plot"])) == 0
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| powerlaw-N10000 | 10,000 | 200,000 | 1.00 ms | OOM (needs 400 MB) |" in md
    assert "100 µs" in md and "400 MB (not run)" in md and "**Achieved GB/s**" in md
    assert (tmp_path / "out" / "profile.png").exists() == with_plot
    text = doc.read_text()
    assert "old" not in text and text.startswith("intro") and text.endswith("outro\n")
    assert "### SpMM" in text and "# Benchmark report" not in text
    lines = text.splitlines()  # every table followed by the results file of its numbers
    ends = [i for i, line in enumerate(lines) if line.startswith("|")
            and not lines[i + 1].startswith("|")]
    root = tmp_path.resolve()
    note = f"<!-- numbers: {root}/results.json {root}/out/report.md -->"
    assert len(ends) == 3 and all(lines[i + 1:i + 3] == ["", note] for i in ends)


def test_threshold_sweep_names_the_fastest_over_all_sizes():
    times = {"a": {"256": 2.0, "1024": 1.0, "off": 5.0}, "b": {"256": 1.0, "1024": 1.5, "off": 9.0}}
    text = "\n".join(report.sweep_lines([
        {"op": "spmm_threshold", "size": size, "provider": f"T={t}", "seconds": s, "status": "ok",
         "max_degree": 5000} for size, row in times.items() for t, s in row.items()]))
    assert "**T=1024**" in text  # geometric means: 256 → 1.41, 1024 → 1.22, off → 6.7
    assert "| a | 5,000 | 2.00 s | 1.00 s | 5.00 s |" in text


def test_curve_stage_fits_its_epochs_to_the_time_left(tmp_path):
    records = [{"dataset": "gowalla", "provider": "ours lightgcn", "status": "ok",
                "s_per_epoch": 1.0, "eval_seconds": 0.5}]
    (tmp_path / "epochs.json").write_text(json.dumps({"meta": {}, "records": records}))
    epochs, every, basis = device_run.curve_plan(tmp_path, 200.0, dry_run=False)
    assert epochs == int(0.85 * (200 - device_run.CURVE_STARTUP_S - 11 * 0.5))
    assert every == epochs // 10
    assert "1.00 s/epoch" in basis
    assert device_run.curve_plan(tmp_path, 1e6, dry_run=False)[0] == 1000  # never past the config's
    no_time = device_run.CURVE_STARTUP_S
    assert device_run.stage_command("curve", tmp_path, tmp_path, False, no_time) is None
    [argv] = device_run.stage_command("curve", tmp_path, tmp_path, False, 300.0)[0]
    assert argv[argv.index("--epochs") + 1] == str(device_run.curve_plan(tmp_path, 290.0, False)[0])


def test_kernels_stage_is_the_suite_one_size_at_a_time(tmp_path):
    argvs, limit, extra = device_run.stage_command("kernels", tmp_path, tmp_path, False, 1000.0)
    assert limit == device_run.LIMITS["kernels"]
    assert [a[1] for a in argvs] == [f"GNN_BENCH_SIZES={s}" for s in device_run.KERNEL_SIZES]
    assert all("bench/test_sparse_ops.py" in a and str(tmp_path / "kernels") in a[-1]
               for a in argvs)
    assert all("GNN_BENCH_DTYPES=float32,bfloat16" in a and "GNN_BENCH_RECOMPUTE_S=1" in a
               and "GNN_BENCH_THRESHOLDS=128,256,512,1024,2048,4096,off" in a for a in argvs)


def test_sizes_merge_into_one_suite_json(tmp_path):
    runs = []
    for i, size in enumerate(("a", "b")):
        runs.append(tmp_path / f"{size}.json")
        runs[-1].write_text(json.dumps({
            "machine_info": {"node": "x"}, "benchmarks": [_record("ours", size, 10 + i, 1e-3, 100)],
            "gnn_not_run": [{"op": "spmm", "size": size}] if i else [],
            "gnn_failed": [{"test": f"t[{size}]", "error": "E"}], "gnn_config": {"sizes": size}}))
    (tmp_path / "empty.json").write_text("")  # nothing ran
    (tmp_path / "cut.json").write_text('{"benchmarks": [')  # stopped while writing
    assert device_run.merge_suite_jsons([tmp_path / "empty.json", tmp_path / "none.json"]) == {}
    merged = device_run.merge_suite_jsons([tmp_path / "cut.json"] + runs)
    assert [b["extra_info"]["size"] for b in merged["benchmarks"]] == ["a", "b"]
    assert merged["gnn_config"]["sizes"] == "a,b" and len(merged["gnn_not_run"]) == 1
    assert [f["test"] for f in merged["gnn_failed"]] == ["t[a]", "t[b]"]
    assert merged["machine_info"] == {"node": "x"}


def test_accuracy_line_names_the_failed_tests():
    records = [{"dtype": "float32", "rel_err": 2e-7}, {"dtype": "bfloat16", "rel_err": 3e-3},
               {"dtype": "bfloat16", "rel_err": 1e-2}, {"dtype": "float32"}]
    failed = [{"test": "bench/test_sparse_ops.py::test_spmm[g-bfloat16-dense]",
               "error": "AssertionError: rel err 9.00e-02 > 0.05"}]
    line = report.accuracy_lines(records, failed)[0]
    assert "3 results checked" in line and "float32 2.0e-07, bfloat16 1.0e-02" in line
    assert "1 tests failed: `bench/test_sparse_ops.py::test_spmm[g-bfloat16-dense]`" in line
