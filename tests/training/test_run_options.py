"""Run options of TrainConfig that the CLI maps onto (issue 17, problems 4 and 8): skipping bad
lines as a config field, the thread count, and progress off a terminal."""
import pytest
import torch

import gnn.training.trainer as trainer_module
from gnn import TrainConfig, Trainer
from gnn.data import DatasetFormatError
from tiny_datasets import tiny_split


def ratings_with_a_bad_line(path):
    lines = ["user,item"] + [f"{u},{i}" for u in range(12) for i in range(u % 5, u % 5 + 6)]
    lines.insert(7, "3,4,x")  # a third field: line 8 of the file
    path.write_text("\n".join(lines) + "\n")
    return path


def test_on_bad_line_is_a_config_field(tmp_path):
    # --skip-bad-lines loaded the dataset in the CLI and passed it in: resume and config files
    # could not remember it.
    data = ratings_with_a_bad_line(tmp_path / "r.csv")
    base = dict(model="mf", dataset=str(data), epochs=1, dim=4, device="cpu", progress=False)
    with pytest.raises(DatasetFormatError, match="line 8"):
        Trainer(TrainConfig(**base), log=lambda *a: None)
    trainer = Trainer(TrainConfig(**base, on_bad_line="skip"), log=lambda *a: None)
    assert trainer.dataset.bad_lines.count == 1
    assert TrainConfig(**base, on_bad_line="skip").to_dict()["on_bad_line"] == "skip"
    with pytest.raises(ValueError, match="on_bad_line must be 'error' or 'skip'"):
        TrainConfig(on_bad_line="warn")


def test_threads_are_set_only_when_asked(monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    base = dict(model="mf", dataset="tiny", epochs=1, device="cpu", progress=False)
    Trainer(TrainConfig(**base), dataset=tiny_split(), log=lambda *a: None)
    assert calls == []
    Trainer(TrainConfig(**base, threads=1), dataset=tiny_split(), log=lambda *a: None)
    assert calls == [1]
    with pytest.raises(ValueError, match="threads must be >= 1"):
        TrainConfig(threads=0)


def test_progress_off_a_terminal_is_one_line_per_epoch(capsys):
    # The tqdm bar wrote \r fragments into log files.
    lines = []
    config = TrainConfig(model="mf", dataset="tiny", epochs=3, dim=4, batch_size=16,
                         device="cpu", progress=True, eval_every=10)
    Trainer(config, dataset=tiny_split(), log=lines.append).fit()
    out = capsys.readouterr()
    assert "\r" not in out.err + out.out
    assert [line.split()[:2] for line in lines] == [["epoch", "1"], ["epoch", "2"], ["epoch", "3"]]
    assert "loss=" in lines[0] and lines[0].endswith(" s")


def test_progress_on_a_terminal_is_a_bar(monkeypatch):
    monkeypatch.setattr(trainer_module, "progress_bar_shown", lambda enabled: enabled)
    lines = []
    config = TrainConfig(model="mf", dataset="tiny", epochs=2, dim=4, device="cpu",
                         progress=True, eval_every=10)
    Trainer(config, dataset=tiny_split(), log=lines.append).fit()
    assert [line.split()[1] for line in lines] == ["2"]  # the evaluation of the last epoch only
