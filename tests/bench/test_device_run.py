"""The device run proven before any GPU: its dry run (every stage on the CPU at tiny sizes, Triton
through its interpreter) passes, returns its files as the device machine would (at most 8,
flat), and the report turns them into the docs' GPU section and the README's headlines."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report
from bench.device_run import NAMES
from bench.plot import load_suite_json

ROOT = Path(__file__).resolve().parents[2]
FILES = {"device.json", "device.log", "kernels.json", "epochs.json", "memory.png", "curve.json",
         "curve.png"}


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("device") / "out"
    res = subprocess.run([sys.executable, "-m", "bench.device_run", "--dry-run", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    return out, res


def test_every_stage_passes(dry_run):
    out, res = dry_run
    device = json.loads((out / "device.json").read_text())
    assert res.returncode == 0, res.stdout[-4000:]
    assert {s["name"]: s["status"] for s in device["stages"]} == dict.fromkeys(NAMES, "ok")
    assert device["machine"]["gnn_from"].startswith(device["import_path"]), \
        "the stages must import the checkout through the device run's own mapping"


def test_results_come_back_as_the_device_returns_them(dry_run):
    out, _ = dry_run
    assert all(p.is_file() for p in out.iterdir())
    try:
        import matplotlib  # noqa: F401
        expected = FILES
    except ImportError:
        expected = FILES - {"memory.png", "curve.png"}
    assert {p.name for p in out.iterdir()} == expected


def test_results_are_checked_and_complete(dry_run):
    out, _ = dry_run
    kernels, meta = load_suite_json(out / "kernels.json")  # every size's run, merged
    assert meta["config"]["sizes"] == "powerlaw-N32-nnz160,powerlaw-N48-nnz192"
    assert {("spmm", "float32"), ("spmm", "bfloat16"), ("spmm_fwd_bwd", "float32"),
            ("spmm_fwd_bwd", "bfloat16"), ("ngcf_layer_fwd_bwd", "bfloat16"),
            ("spmm_threshold", "float32"), ("ngcf_threshold", "float32")} <= {
        (r["op"], r["dtype"]) for r in kernels}
    ran = [r for r in kernels if r["status"] == "ok"]
    assert meta["failed"] == [] and all(r["rel_err"] < 1e-1 for r in ran)
    assert {"T=4", "T=off", "ours_fused (S recomputed)"} <= {r["provider"] for r in ran}
    assert [(r["size"], r["dtype"]) for r in kernels if r["status"] != "ok"] == [
        ("powerlaw-N48-nnz192", "float32")] * 3, "the dense Â over the dry run's budget, not run"
    epochs = json.loads((out / "epochs.json").read_text())["records"]
    assert {(r["dataset"], r["provider"]) for r in epochs if r["status"] == "ok"} >= {
        ("gowalla", "ours lightgcn"), ("gowalla", "ours ngcf"), ("ml-latest-small", "ours ngcf")}
    curve = json.loads((out / "curve.json").read_text())
    assert curve["epochs"] >= 1 and curve["recall@20"] is not None


def test_report_fills_the_gpu_section(dry_run, tmp_path):
    out, _ = dry_run
    doc, readme = tmp_path / "BENCHMARKS.md", tmp_path / "README.md"
    for path in (doc, readme):
        path.write_text("# B\n<!-- bench:gpu:start -->\nold block\n<!-- bench:gpu:end -->\n")
    argv = [str(out), "--out", str(tmp_path / "gpu"), "--section", "gpu", "--update-docs", str(doc),
            "--headlines", str(readme)]
    assert report.main(argv) == 0
    short = readme.read_text()
    assert "Dry run on the CPU" in short and "Gowalla training, epochs/s" in short
    assert "SpMM fp32, ours vs cuSPARSE" in short and "Memory of one SpMM at N = 48" in short
    text = doc.read_text()
    assert "old block" not in text and "DRY RUN" in text
    sources = f"<!-- numbers: {out}/*.json {tmp_path / 'gpu' / 'report.md'} -->"
    assert sources in text and sources in short
    for heading in ("### Kernels", "#### SpMM  Y = Â·E, bfloat16", "### Training epochs",
                    "#### NGCF layer, forward + backward, float32", "### Memory against graph size",
                    "### Gowalla LightGCN learning curve", "Long-row threshold sweep",
                    "S saved vs recomputed", "bfloat16 ", "; 0 tests failed.",
                    "| 9.2 kB (not run) |"):
        assert heading in text, heading
