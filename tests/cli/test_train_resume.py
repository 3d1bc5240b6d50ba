"""``python -m gnn.train --resume`` from the checkpoint alone, and every checkpoint problem as the
CLI's one-line error with exit status 2 (issue 17, problem 5)."""
import json

import pytest

from cli_runs import run_module, synthetic_ratings
from gnn.checkpoint import load_checkpoint
from gnn.cli.export import main as export_main
from gnn.cli.recommend import main as recommend_main
from gnn.cli.train import main as train_main


def one_line_error(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(folder, data, flags): a 2-epoch LightGCN run with non-default settings, checkpointed."""
    folder = tmp_path_factory.mktemp("run")
    data = synthetic_ratings(folder / "ratings.csv", n_users=50, n_items=40, per_user=12)
    flags = ["--model", "lightgcn", "--dataset", str(data), "--dim", "8", "--layers", "2",
             "--lr", "0.05", "--batch-size", "64", "--seed", "3", "--sampling", "pair",
             "--device", "cpu", "--no-progress", "--patience", "50"]
    assert train_main(flags + ["--epochs", "2", "--checkpoint", str(folder / "ckpt.pt"),
                               "--json", str(folder / "first.json")]) == 0
    return folder, data, flags


def test_resume_needs_the_checkpoint_alone(run, tmp_path):
    # Issue 17, problem 5: --resume needed every flag typed again (the defaults, NGCF here,
    # were then refused as another run's).
    folder, _, flags = run
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes((folder / "ckpt.pt").read_bytes())
    resumed = tmp_path / "resumed.json"
    assert train_main(["--resume", "--checkpoint", str(ckpt), "--epochs", "4",
                       "--json", str(resumed)]) == 0
    straight = tmp_path / "straight.json"
    assert train_main(flags + ["--epochs", "4", "--json", str(straight)]) == 0
    a, b = json.loads(straight.read_text()), json.loads(resumed.read_text())
    for key in ("model", "epochs", "best_epoch", "recall@20", "ndcg@20"):
        assert a[key] == b[key], key
    first = json.loads((folder / "first.json").read_text())["config"]
    changed = {k for k in first if first[k] != b["config"][k]}
    assert changed == {"epochs", "json", "checkpoint", "resume"}, changed
    assert load_checkpoint(ckpt)["epoch"] == 4


def test_evaluation_settings_and_threads_change_on_resume(run, tmp_path):
    folder, _, _ = run
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes((folder / "ckpt.pt").read_bytes())
    out = tmp_path / "out.json"
    assert train_main(["--resume", "--checkpoint", str(ckpt), "--epochs", "3", "--k", "5",
                       "--patience", "7", "--eval-every", "3", "--threads", "1",
                       "--progress", "--no-compile", "--json", str(out)]) == 0
    config = json.loads(out.read_text())["config"]
    assert config["ks"] == [5, 20] and config["patience"] == 7 and config["threads"] == 1
    assert config["progress"] and not config["compile"]  # the first run had --no-progress


def test_checkpoint_problems_are_one_line_errors(run, tmp_path, capsys):
    # Issue 17, problem 5: a mismatched model or a missing checkpoint ended in a traceback.
    folder, data, flags = run
    ckpt = str(folder / "ckpt.pt")
    cases = [
        (["--resume", "--checkpoint", str(tmp_path / "missing.pt")], "checkpoint not found"),
        (["--resume", "--checkpoint", ckpt, "--model", "ngcf"],
         "the checkpoint was written with model='lightgcn', this run has model='ngcf'"),
        (["--resume", "--checkpoint", ckpt, "--lr", "0.01"],
         "this run has lr=0.01 (a resumed run may change only epochs"),
        (["--resume"], "resume needs the checkpoint"),
        (["--model", "mf", "--dataset", str(data), "--checkpoint", ckpt],
         "holds the checkpoint of a 'lightgcn' run after epoch 2: continue it with --resume"),
    ]
    for argv, message in cases:
        assert train_main(argv) == 2, argv
        assert message in one_line_error(capsys.readouterr().err), argv
    # The subprocess, as a user runs it: exit 2, one line, no traceback.
    res = run_module("gnn.train", "--resume", "--checkpoint", ckpt, "--model", "mf")
    assert res.returncode == 2 and "model='lightgcn'" in one_line_error(res.stderr)
    assert load_checkpoint(ckpt)["epoch"] == 2  # nothing was written over it


def test_overwrite_replaces_another_runs_checkpoint(run, tmp_path):
    folder, data, _ = run
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes((folder / "ckpt.pt").read_bytes())
    assert train_main(["--model", "mf", "--dataset", str(data), "--epochs", "1", "--device",
                       "cpu", "--no-progress", "--checkpoint", str(ckpt), "--overwrite"]) == 0
    assert load_checkpoint(ckpt)["config"]["model"] == "mf"


def fake_distributed_folder(path, config):
    path.mkdir()
    (path / "run.json").write_text(json.dumps({"format": "gnn-distributed-checkpoint-v1",
                                               "config": config, "epoch": 1}))
    return path


def test_one_process_on_a_distributed_folder_names_the_conversion(run, tmp_path, capsys):
    # Issue 17, problem 5: a single process pointed at a distributed checkpoint folder said
    # "not found".
    folder, _, _ = run
    config = load_checkpoint(folder / "ckpt.pt")["config"]
    dist = fake_distributed_folder(tmp_path / "lgcn", config)
    command = f"python -m gnn.distributed.checkpoint {dist} {tmp_path / 'lgcn.pt'}"
    for main, argv in ((train_main, ["--resume", "--checkpoint", str(dist)]),
                       (recommend_main, ["--checkpoint", str(dist), "--user", "7"]),
                       (export_main, [str(dist), "--out", str(tmp_path / "x")])):
        assert main(argv) == 2
        line = one_line_error(capsys.readouterr().err)
        assert "is a distributed checkpoint folder" in line and line.endswith(command), line
