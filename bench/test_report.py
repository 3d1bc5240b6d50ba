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
