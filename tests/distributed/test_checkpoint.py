"""Sharded checkpoints: exact resume with the same world size, re-sharding to another one,
conversion to one file for gnn.load_model and for the single-process trainer."""
import dataclasses
import shlex
import shutil

import numpy as np
import pytest

import workers
from gnn import TrainConfig, Trainer, load_model
from gnn.distributed.checkpoint import convert, main as convert_main, read_run
from gnn.evaluation import Evaluator
from gnn.distributed.local import run_ranks, unwrap

CONFIG = workers.tiny_config(model="ngcf", message_dropout=0.2, node_dropout=0.3, epochs=2)
SUMMARY_KEYS = ("recall@20", "ndcg@20", "valid_recall@20", "best_epoch", "epochs")


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    results = unwrap(run_ranks(workers.checkpoints, 2, CONFIG, str(folder), "first"))
    return folder, results


def assert_resumed_like(resumed, full):
    n = len(resumed["losses"])
    assert n > 0
    np.testing.assert_allclose(resumed["losses"], full["losses"][-n:], rtol=1e-5, atol=0)
    for key in SUMMARY_KEYS:
        a, b = resumed["summary"][key], full["summary"][key]
        assert a == pytest.approx(b, abs=1e-6), key
    assert [h["epoch"] for h in resumed["summary"]["history"]] == [1, 2]


def test_resume_with_the_same_world_size_is_exact(first):
    _, results = first
    for rank in range(2):
        assert_resumed_like(results[rank]["resumed"], results[0]["full"])
        assert results[rank]["full"]["summary"]["world_size"] == 2


def test_a_checkpoint_of_two_processes_resumes_on_three(first):
    folder, results = first
    assert read_run(folder / "epoch1")["world_size"] == 2
    again = unwrap(run_ranks(workers.checkpoints, 3, CONFIG, str(folder), "resume"))
    for rank in range(3):
        assert_resumed_like(again[rank]["resumed"], results[0]["full"])


def test_converted_checkpoint_resumes_in_one_process(first, tmp_path):
    folder, results = first
    out = tmp_path / "one.pt"
    convert(folder / "epoch1", out, dataset=workers.dataset_for("tiny"))
    config = TrainConfig(**dict(CONFIG, checkpoint=str(out), resume=True))
    trainer = Trainer(config, dataset=workers.dataset_for("tiny"), log=lambda *a: None)
    assert_resumed_like(workers.fit_recorded(trainer), results[0]["full"])


def test_load_model_reads_the_converted_checkpoint_and_the_model_file(first, tmp_path):
    folder, results = first
    summary = results[0]["full"]["summary"]
    convert(folder / "full", tmp_path / "full.pt", dataset=workers.dataset_for("tiny"))
    ds = workers.dataset_for("tiny")
    test = Evaluator(ds.test_csr, [ds.train_csr, ds.valid_csr], ks=(20,))
    for path in (tmp_path / "full.pt", folder / "model.pt"):
        metrics = test(*load_model(path).embeddings())  # the best validation weights
        assert metrics["recall@20"] == pytest.approx(summary["recall@20"], abs=1e-6)
        assert metrics["ndcg@20"] == pytest.approx(summary["ndcg@20"], abs=1e-6)


def test_resume_refuses_another_config(first, tmp_path):
    folder, _ = first
    out = tmp_path / "one.pt"
    convert(folder / "epoch1", out, dataset=workers.dataset_for("tiny"))
    bad = TrainConfig(**dict(CONFIG, checkpoint=str(out), resume=True, lr=0.5))
    with pytest.raises(ValueError, match="lr"):
        Trainer(bad, dataset=workers.dataset_for("tiny"), log=lambda *a: None).fit()
    with pytest.raises(ValueError, match="not a distributed checkpoint"):
        read_run(tmp_path)
    assert convert_main([str(tmp_path), str(tmp_path / "x.pt")]) == 2  # an error, no traceback
    assert dataclasses.asdict(TrainConfig(**CONFIG))  # the config itself is valid


def test_a_resume_prints_no_deprecation_warnings(first):
    # Issue 17, problem 8: a distributed resume printed ten ShardedTensor deprecation warnings.
    _, results = first
    for rank in range(2):
        assert results[rank]["warnings"] == [], results[rank]["warnings"]


def test_one_process_names_the_command_that_converts_a_folder(first, tmp_path, monkeypatch):
    # Issue 17, problem 5: load_model (gnn.recommend, gnn.export) on a distributed checkpoint
    # folder said "not found".
    folder, results = first
    copy = tmp_path / "lgcn"
    shutil.copytree(folder / "full", copy)
    with pytest.raises(ValueError, match="is a distributed checkpoint folder") as info:
        load_model(copy)
    command = str(info.value).split("convert it with ")[1]
    assert command == f"python -m gnn.distributed.checkpoint {copy} {tmp_path / 'lgcn.pt'}"
    # The command as given works (the run's dataset is the test's tiny one, not a file).
    monkeypatch.setattr("gnn.training.trainer.Trainer.__init__", _with_tiny_dataset)
    assert convert_main(shlex.split(command)[3:]) == 0
    model = load_model(tmp_path / "lgcn.pt")
    ds = workers.dataset_for("tiny")
    test = Evaluator(ds.test_csr, [ds.train_csr, ds.valid_csr], ks=(20,))
    recall = test(*model.embeddings())["recall@20"]
    assert recall == pytest.approx(results[0]["full"]["summary"]["recall@20"], abs=1e-6)
    assert convert_main(shlex.split(command)[3:]) == 2  # the file exists now: --overwrite
    assert convert_main(shlex.split(command)[3:] + ["--overwrite"]) == 0


_trainer_init = Trainer.__init__


def _with_tiny_dataset(self, config, dataset=None, log=print):
    _trainer_init(self, config, dataset or workers.dataset_for("tiny"), log)
