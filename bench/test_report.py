"""bench.report on a small synthetic pytest-benchmark json (keeps the report from rotting)."""
from __future__ import annotations

import json

import pytest

from bench import report


def _record(provider, size, n, seconds, repr_bytes, **extra):
    info = {"op": "spmm", "provider": provider, "size": size, "device": "cpu", "dtype": "float32",
            "d": 64, "N": n, "nnz": 20 * n, "repr_bytes": repr_bytes, **extra}
    return {"name": f"test_spmm[{size}-{provider}]", "group": f"spmm | {size}",
            "extra_info": info, "stats": {"median": seconds, "rounds": 3}}


@pytest.mark.parametrize("with_plot", [False, True])
def test_report_table_and_plot(tmp_path, with_plot):
    if with_plot:
        pytest.importorskip("matplotlib", reason="matplotlib (optional extra 'plot') not installed")
    data = {
        "benchmarks": [
            _record("ours", "powerlaw-N1000", 1000, 1e-4, 12_000, gbps=1.5),
            _record("ours", "powerlaw-N10000", 10_000, 1e-3, 120_000, gbps=1.6),
            _record("dense", "powerlaw-N1000", 1000, 1e-2, 4_000_000),
        ],
        "gnn_not_run": [dict(_record("dense", "powerlaw-N10000", 10_000, None, 400_000_000)["extra_info"],
                             status="OOM (needs 0.4 GB)", needs_bytes=400_000_000)],
        "gnn_config": {"sizes": "tiny", "torch": "x", "threads": 2},
        "datetime": "2026-01-01T00:00:00",
    }
    src = tmp_path / "results.json"
    src.write_text(json.dumps(data))
    out = tmp_path / "out"
    argv = [str(src), "--out", str(out)] + ([] if with_plot else ["--no-plot"])
    assert report.main(argv) == 0
    md = (out / "report.md").read_text()
    assert "OOM (needs 0.4 GB)" in md and "| powerlaw-N10000 | 10,000 |" in md
    assert "100 µs" in md and "1.00 ms" in md and "400 MB (not run)" in md
    assert (out / "profile.png").exists() == with_plot


def test_report_updates_docs_section(tmp_path):
    src = tmp_path / "results.json"
    src.write_text(json.dumps({"benchmarks": [
        _record("ours", "powerlaw-N1000", 1000, 1e-4, 12_000, gbps=1.5)]}))
    doc = tmp_path / "BENCH.md"
    doc.write_text("intro\n<!-- bench:cpu:start -->\nold\n<!-- bench:cpu:end -->\noutro\n")
    argv = [str(src), "--out", str(tmp_path / "out"), "--no-plot", "--update-docs", str(doc)]
    assert report.main(argv) == 0
    text = doc.read_text()
    assert "old" not in text and text.startswith("intro") and text.endswith("outro\n")
    assert "### SpMM" in text and "# Benchmark report" not in text


# --------------------------------------------------------------------------- device runs
def _sweep_record(op, size, t, seconds):
    return {"op": op, "size": size, "dtype": "float32", "provider": f"T={t}", "seconds": seconds,
            "status": "ok", "max_degree": 5000, "N": 10, "nnz": 100}


def test_threshold_sweep_names_the_fastest_over_all_sizes():
    from bench.report_device import sweep_lines

    times = {"a": {"256": 2.0, "1024": 1.0, "off": 5.0}, "b": {"256": 1.0, "1024": 1.5, "off": 9.0}}
    records = [_sweep_record("spmm_threshold", size, t, s)
               for size, row in times.items() for t, s in row.items()]
    text = "\n".join(sweep_lines(records))
    assert "**T=1024**" in text  # geometric means: 256 → 1.41, 1024 → 1.22, off → 6.7
    assert "| a | 5,000 | 2.00 s | 1.00 s | 5.00 s |" in text


def test_curve_stage_fits_its_epochs_to_the_time_left(tmp_path):
    from bench.stages import CURVE_STARTUP_S, command, curve_plan

    records = [{"dataset": "gowalla", "provider": "ours lightgcn", "status": "ok",
                "s_per_epoch": 1.0, "eval_seconds": 0.5}]
    (tmp_path / "epochs.json").write_text(json.dumps({"meta": {}, "records": records}))
    epochs, every, basis = curve_plan(tmp_path, 200.0, dry_run=False)
    assert epochs == int(0.85 * (200 - CURVE_STARTUP_S - 11 * 0.5)) and every == epochs // 10
    assert "1.00 s/epoch" in basis
    assert curve_plan(tmp_path, 1e6, dry_run=False)[0] == 1000  # never past the config's epochs
    assert command("curve", tmp_path, tmp_path, False, CURVE_STARTUP_S) is None  # no time left
    argv = command("curve", tmp_path, tmp_path, False, 300.0)[0]
    assert argv[argv.index("--epochs") + 1] == str(curve_plan(tmp_path, 290.0, False)[0])
