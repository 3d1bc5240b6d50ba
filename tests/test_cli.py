"""The command line end to end: training on real MovieLens, JSON summary, resume, recommend."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from conftest import PROJECT_ROOT, require_real_file
from gnn.checkpoint import load_checkpoint
from gnn.recommend import main as recommend_main
from gnn.train import main as train_main

REQUIRED_KEYS = {"model", "dataset", "epochs", "best_epoch", "recall@20", "precision@20", "ndcg@20",
                 "hit@20", "sec_per_epoch", "device", "n_users", "n_items", "n_train"}


def synthetic_ratings(path, n_users=120, n_items=90, per_user=25, seed=0):
    """A small ``user,item,rating,timestamp`` file with popularity skew."""
    rng = np.random.default_rng(seed)
    lines = ["user,item,rating,timestamp"]
    for u in range(n_users):
        items = np.unique(np.minimum(rng.zipf(1.3, per_user), n_items) + 1000)
        for t, i in enumerate(items):
            lines.append(f"{u + 7},{i},{rng.integers(1, 6)},{1_000_000 + t}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_three_epoch_ngcf_on_movielens_writes_summary(tmp_path, data_root):
    require_real_file("ml-latest-small", "ratings.csv")
    out = tmp_path / "run.json"
    ckpt = tmp_path / "run.pt"
    code = train_main(["--model", "ngcf", "--dataset", "ml-latest-small", "--data-root", str(data_root),
                       "--epochs", "3", "--json", str(out), "--checkpoint", str(ckpt),
                       "--no-progress", "--device", "cpu"])
    assert code == 0
    summary = json.loads(out.read_text())
    assert REQUIRED_KEYS <= summary.keys()
    assert summary["model"] == "ngcf" and summary["dataset"] == "ml-latest-small"
    assert summary["epochs"] == 3 and 1 <= summary["best_epoch"] <= 3
    assert summary["n_users"] == 610 and summary["n_items"] == 9724
    assert summary["n_train"] + summary["n_valid"] + summary["n_test"] == 100836
    for k in ("recall@20", "precision@20", "ndcg@20", "hit@20"):
        assert 0.0 < summary[k] <= 1.0, k
    assert summary["hit@20"] >= summary["recall@20"] > 0.01  # better than random already
    assert summary["sec_per_epoch"] > 0 and summary["device"] == "cpu"
    assert len(summary["history"]) == 3 and all("valid_recall@20" in h for h in summary["history"])

    # The checkpoint serves recommendations for MovieLens user 1.
    assert recommend_main(["--checkpoint", str(ckpt), "--user", "1", "-k", "5"]) == 0


def test_recommend_prints_titles_and_never_seen_items(tmp_path, capsys, data_root):
    require_real_file("ml-latest-small", "ratings.csv")
    ckpt = tmp_path / "mf.pt"
    assert train_main(["--model", "mf", "--dataset", "ml-latest-small", "--data-root", str(data_root),
                       "--epochs", "1", "--checkpoint", str(ckpt), "--no-progress"]) == 0
    capsys.readouterr()
    assert recommend_main(["--checkpoint", str(ckpt), "--user", "1", "-k", "10"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 11 and "(" in lines[1]  # titles carry the year in parentheses
    state = load_checkpoint(ckpt)
    data = state["data"]
    u = int((data["user_ids"] == 1).nonzero()[0])
    seen = set(data["item_ids"][data["train_item"][data["train_user"] == u]].tolist())
    shown = {int(line.split("item ")[1].split()[0]) for line in lines[1:]}
    assert len(shown) == 10 and not shown & seen
    assert recommend_main(["--checkpoint", str(ckpt), "--user", "999999"]) == 2


def run_cli(args, **kwargs):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "gnn.train", *args], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["ngcf", "lightgcn"])
def test_killed_run_resumes_to_the_same_metrics(tmp_path, model):
    data = synthetic_ratings(tmp_path / "ratings.csv")
    common = ["--model", model, "--dataset", str(data), "--epochs", "40", "--batch-size", "256",
              "--eval-every", "2", "--patience", "100", "--device", "cpu", "--no-progress",
              "--seed", "3"]
    straight = tmp_path / "straight.json"
    assert train_main(common + ["--json", str(straight)]) == 0

    ckpt = tmp_path / "ckpt.pt"
    proc = run_cli(common + ["--checkpoint", str(ckpt)])
    deadline = time.time() + 120
    while time.time() < deadline:
        if ckpt.exists() and load_checkpoint(ckpt)["epoch"] >= 5:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(ckpt)["epoch"]
    assert proc.returncode == -signal.SIGKILL and 5 <= killed_at < 40, "the run was not killed mid-way"

    resumed = tmp_path / "resumed.json"
    assert train_main(common + ["--checkpoint", str(ckpt), "--resume", "--json", str(resumed)]) == 0
    a, b = json.loads(straight.read_text()), json.loads(resumed.read_text())
    for key in ("epochs", "best_epoch", "recall@20", "precision@20", "ndcg@20", "hit@20"):
        assert a[key] == b[key], key
    assert [h.get("test_recall@20") for h in a["history"]] == [h.get("test_recall@20") for h in b["history"]]
    # The reported loss is a float32 reduction whose summation order follows OpenMP's thread
    # count, which varies with machine load; it may differ in the last bit (the weights do not).
    assert [h["loss"] for h in a["history"]] == pytest.approx([h["loss"] for h in b["history"]], rel=1e-6)


def test_resume_refuses_a_different_run(tmp_path):
    data = synthetic_ratings(tmp_path / "ratings.csv")
    ckpt = tmp_path / "ckpt.pt"
    base = ["--dataset", str(data), "--epochs", "1", "--device", "cpu", "--no-progress",
            "--checkpoint", str(ckpt)]
    assert train_main(["--model", "mf"] + base) == 0
    with pytest.raises(ValueError, match="model='mf'"):
        train_main(["--model", "lightgcn", "--resume"] + base)


def test_checkpoint_is_plain_data(tmp_path):
    data = synthetic_ratings(tmp_path / "ratings.csv")
    ckpt = tmp_path / "ckpt.pt"
    assert train_main(["--model", "lightgcn", "--dataset", str(data), "--epochs", "2", "--device", "cpu",
                       "--no-progress", "--checkpoint", str(ckpt)]) == 0
    torch.load(ckpt, weights_only=True)  # loads under the safe unpickler
    assert not list(tmp_path.glob(".ckpt.pt.*"))  # no temporary file left behind


def test_cli_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        train_main(["--epochs", "-1"])
    assert "epochs must be >= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_main(["--model", "gcn"])


def test_module_help_runs():
    out = subprocess.run([sys.executable, "-m", "gnn.train", "--help"], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, check=True).stdout
    for flag in ("--model", "--dataset", "--data-root", "--epochs", "--batch-size", "--lr", "--reg",
                 "--dim", "--layers", "--split", "--min-rating", "--seed", "--device",
                 "--eval-every", "--patience", "--k", "--checkpoint", "--resume", "--json"):
        assert flag in out


def test_bad_dataset_gives_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item\n1,2\n3,x\n")
    assert train_main(["--dataset", str(bad), "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(bad) in err and "line 3" in err
    assert train_main(["--dataset", str(tmp_path / "missing.csv"), "--epochs", "1"]) == 2
    assert "neither a known dataset" in capsys.readouterr().err
