"""``python -m gnn.train`` options of issue 17, problem 8: ``--config FILE`` for any run (flags
over it), ``--threads``, ``--skip-bad-lines`` as a config field, progress off a terminal, and
``--epochs 0``."""
import json
from pathlib import Path

import pytest
import torch

from cli_runs import run_module, synthetic_ratings
from gnn import TrainConfig
from gnn.cli.train import main as train_main

ROOT = Path(__file__).resolve().parents[2]


def error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_flags_given_are_told_from_defaults():
    from gnn.cli.train import given_fields

    assert given_fields([]) == {}
    assert given_fields(["--k", "5", "10", "--no-progress", "--skip-bad-lines", "--threads", "2",
                         "--lr", "0.01"]) == {"ks": [5, 10], "progress": False,
                                              "on_bad_line": "skip", "threads": 2, "lr": 0.01}


def test_a_config_file_with_flags_over_it(tmp_path):
    data = synthetic_ratings(tmp_path / "r.csv", n_users=30, n_items=30, per_user=8)
    file = tmp_path / "run.json"
    file.write_text(json.dumps({"model": "lightgcn", "dataset": str(data), "epochs": 3, "dim": 4,
                                "layers": 1, "device": "cpu", "progress": False,
                                "json": str(tmp_path / "summary.json")}))
    assert train_main(["--config", str(file), "--epochs", "1", "--lr", "0.01"]) == 0
    config = json.loads((tmp_path / "summary.json").read_text())["config"]
    assert (config["epochs"], config["lr"], config["dim"], config["layers"]) == (1, 0.01, 4, 1)
    assert config["model"] == "lightgcn"


@pytest.mark.parametrize("content,message", [
    ({"modle": "mf"}, "unknown key 'modle'"),
    ({"epochs": "3"}, 'epochs must be an integer, but got "3"'),
    ({"ks": [10, "20"]}, "ks must be a list of integers"),
    ({"train": {}, "paper": {}}, "a gnn.reproduce config?"),
    ([1, 2], "a config is a JSON object of TrainConfig fields"),
])
def test_a_bad_config_file_is_an_error_naming_the_key_and_file(tmp_path, capsys, content,
                                                               message):
    file = tmp_path / "bad.json"
    file.write_text(json.dumps(content))
    assert train_main(["--config", str(file)]) == 2
    line = error_line(capsys)
    assert str(file) in line and message in line
    file.write_text("{\"epochs\": 3,}")
    assert train_main(["--config", str(file)]) == 2
    assert "not valid JSON (line 1" in error_line(capsys)


def test_the_shipped_run_configs_are_valid():
    from gnn.training.run_config import read_config_file, run_config

    files = sorted((ROOT / "configs" / "train").glob("*.json"))
    assert files
    for file in files:
        values = read_config_file(file)
        config = run_config({}, config_file=file)
        assert config.model == values["model"]
        # An ordinary run: the CLI's defaults but for what the file names (and its outputs).
        defaults = TrainConfig(model=values["model"]).to_dict()
        same = {k for k, v in values.items() if defaults.get(k) == v}
        assert set(values) - same <= {"split", "ks", "checkpoint", "json", "save_model"}, file


def test_threads_flag_sets_torchs_threads(tmp_path, monkeypatch):
    # Issue 17, problem 8: no --threads (an MF step took 384-595 ms with 2 threads and 3.9 ms
    # with 1 on a busy 2-core machine).
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    data = synthetic_ratings(tmp_path / "r.csv", n_users=20, n_items=20, per_user=6)
    assert train_main(["--model", "mf", "--dataset", str(data), "--epochs", "1", "--dim", "4",
                       "--device", "cpu", "--no-progress", "--threads", "1"]) == 0
    assert calls == [1]


def test_skip_bad_lines_is_remembered_by_the_checkpoint(tmp_path):
    data = tmp_path / "r.csv"
    lines = ["user,item"] + [f"{u},{i}" for u in range(15) for i in range(u % 4, u % 4 + 6)]
    data.write_text("\n".join(lines[:5] + ["3,4,x"] + lines[5:]) + "\n")
    ckpt = tmp_path / "ckpt.pt"
    assert train_main(["--model", "mf", "--dataset", str(data), "--epochs", "1", "--dim", "4",
                       "--device", "cpu", "--no-progress", "--skip-bad-lines",
                       "--checkpoint", str(ckpt)]) == 0
    assert train_main(["--resume", "--checkpoint", str(ckpt), "--epochs", "2"]) == 0


def test_progress_in_a_log_file_is_one_line_per_epoch(tmp_path):
    # Issue 17, problem 8: the progress bar wrote \r fragments into log files.
    data = synthetic_ratings(tmp_path / "r.csv", n_users=30, n_items=30, per_user=8)
    res = run_module("gnn.train", "--model", "mf", "--dataset", data, "--epochs", "3",
                     "--eval-every", "5", "--dim", "4", "--batch-size", "32", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    assert "\r" not in res.stdout + res.stderr
    epochs = [line.split()[1] for line in res.stdout.splitlines() if line.startswith("epoch")]
    assert epochs == ["1", "2", "3"], res.stdout


def test_zero_epochs_says_nothing_was_trained(tmp_path, capsys):
    # Issue 17, problem 8: --epochs 0 printed "test at epoch None".
    data = synthetic_ratings(tmp_path / "r.csv", n_users=20, n_items=20, per_user=6)
    assert train_main(["--model", "mf", "--dataset", str(data), "--epochs", "0", "--device",
                       "cpu", "--no-progress", "--json", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "no epoch was trained (epochs=0), so nothing was evaluated" in out
    assert "None" not in out
    assert json.loads((tmp_path / "s.json").read_text())["epochs"] == 0
