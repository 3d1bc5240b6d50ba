"""``torchrun ... -m gnn.train`` as a user runs it: two processes on the CPU, rank 0 alone
prints and writes, the summary gains world_size, the metrics are one process's; refusals are
one line from rank 0 and a clean exit; a resume needs the checkpoint folder alone and prints no
deprecation warnings."""
import json
import os
import subprocess
import sys

import pytest

from cli.cli_runs import PROJECT_ROOT, synthetic_ratings
from gnn import load_model
from gnn.cli.train import main as train_main


@pytest.mark.slow
def test_torchrun_two_processes_like_one(tmp_path):
    data = synthetic_ratings(tmp_path / "ratings.csv", n_users=60, n_items=50, per_user=15)
    common = ["--model", "ngcf", "--dataset", str(data), "--epochs", "3", "--batch-size", "128",
              "--dim", "8", "--layers", "2", "--node-dropout", "0.1", "--device", "cpu",
              "--no-progress", "--seed", "2"]
    one = tmp_path / "one.json"
    assert train_main(common + ["--json", str(one)]) == 0

    two = tmp_path / "two.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", GNN_DIST_TIMEOUT="60")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "gnn.train", *common, "--json", str(two), "--save-model", str(tmp_path / "m.pt")],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    why = f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-3000:]}"
    assert proc.returncode == 0, why
    assert proc.stdout.count("test at epoch") == 1, why  # rank 0 alone prints
    assert "x 2 processes" in proc.stdout, why
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    assert a["world_size"] == 1 and b["world_size"] == 2
    for key in ("recall@20", "ndcg@20", "precision@20", "hit@20", "valid_recall@20"):
        assert b[key] == pytest.approx(a[key], abs=1e-3), key
    assert [h["loss"] for h in b["history"]] == pytest.approx([h["loss"] for h in a["history"]],
                                                             rel=1e-5)
    assert load_model(tmp_path / "m.pt").n_users == a["n_users"]


def torchrun(*args, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1", GNN_DIST_TIMEOUT="60")
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", "-m", "gnn.train", *map(str, args)],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_a_refusal_under_torchrun_is_one_line_and_a_clean_exit(tmp_path):
    # Issue 17, problem 8: the --compile refusal was printed once per rank and ended in
    # torchrun's traceback.
    data = synthetic_ratings(tmp_path / "ratings.csv", n_users=20, n_items=20, per_user=5)
    for flags, message in ((["--compile"], "compile is not supported by distributed training"),
                           (["--epochs", "-1"], "epochs must be >= 0"),
                           (["--resume", "--checkpoint", tmp_path / "none"],
                            "checkpoint not found")):
        proc = torchrun("--dataset", data, "--device", "cpu", *flags, timeout=120)
        errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert len(errors) == 1 and errors[0].startswith("error: ") and message in errors[0], \
            proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


@pytest.mark.slow
def test_torchrun_resumes_from_the_folder_alone_without_warnings(tmp_path):
    data = synthetic_ratings(tmp_path / "ratings.csv", n_users=40, n_items=30, per_user=10)
    ckpt, summary = tmp_path / "ckpt", tmp_path / "run.json"
    first = torchrun("--model", "lightgcn", "--dataset", data, "--device", "cpu", "--dim", "8",
                     "--layers", "1", "--batch-size", "64", "--epochs", "1", "--no-progress",
                     "--checkpoint", ckpt, "--json", summary)
    assert first.returncode == 0, first.stderr[-3000:]
    again = torchrun("--resume", "--checkpoint", ckpt, "--epochs", "2", "--k", "5")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Warning" not in again.stderr, again.stderr[-3000:]
    assert again.stdout.count("resumed from") == 1, again.stdout
    result = json.loads(summary.read_text())  # the first run's --json, remembered
    assert result["epochs"] == 2 and result["world_size"] == 2
    assert result["config"]["dim"] == 8 and result["config"]["ks"] == [5, 20]
