"""examples/custom_loop.py runs as a user would run it (two epochs), with public names only."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import gnn

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_loop.py"


def test_example_is_short_and_uses_public_names_only():
    source = EXAMPLE.read_text()
    assert len(source.splitlines()) <= 40
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "gnn":
            assert all(alias.name in gnn.__all__ for alias in node.names), ast.dump(node)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gnn."):
            raise AssertionError(f"the example imports from {node.module}: use top-level names")


def test_example_trains_evaluates_saves_loads_and_recommends(dataset_file, tmp_path):
    dataset_file("ml-latest-small", "ratings.csv")  # skips without the real data
    result = subprocess.run([sys.executable, str(EXAMPLE), "2"], cwd=tmp_path, env=dict(os.environ),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("epoch 2: loss ") and "valid recall@20 0.0" in lines[0]
    assert lines[-1].startswith("user 1 -> [") and lines[-1].count("', '") == 9
    assert (tmp_path / "ngcf-ml-latest-small.pt").is_file()


OWN_MODEL = EXAMPLE.parent / "own_model.py"


def test_own_model_example_trains_resumes_loads_and_exports(dataset_file, tmp_path):
    """examples/own_model.py (issue 17): a model the library does not ship (learned layer
    weights, learnable edge weights through Â and csr_spmm) through the Trainer, its checkpoint,
    resume, load_model and the export, whose arrays answer as recommend() does."""
    dataset_file("ml-latest-small", "ratings.csv")  # skips without the real data
    result = subprocess.run([sys.executable, str(OWN_MODEL), "1"], cwd=tmp_path,
                            env=dict(os.environ), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "resumed from learned.pt after epoch 1" in out and "epoch    3" in out
    assert "verified: exact inner-product top-10 equals recommend() for 100 users" in out
    line = next(t for t in out.splitlines() if t.startswith("test recall@20"))
    low, high = (float(v) for v in line.split("edge weights in [")[1].rstrip("]").split(", "))
    assert low < 1.0 < high  # the edge weights were trained (all 1 at the start)
    assert (tmp_path / "learned-export" / "item_embeddings.npy").is_file()
