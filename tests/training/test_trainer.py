"""gnn.Trainer: protocols, the weights it leaves behind, resume, sampling modes, config errors."""
import numpy as np
import pytest
import torch

from gnn import TrainConfig, Trainer
from gnn.evaluation import Evaluator
from tiny_datasets import tiny_split


def config(**kw):
    base = dict(model="lightgcn", dataset="tiny", epochs=6, batch_size=32, lr=0.05, dim=8,
                device="cpu", progress=False, patience=2)
    base.update(kw)
    if base["model"] != "mf":  # MF has no layers
        base.setdefault("layers", 2)
    return TrainConfig(**base)


def make(valid=True, **kw):
    return Trainer(config(**kw), dataset=tiny_split(valid=valid), log=lambda *a: None)


@pytest.mark.parametrize("model", ["ngcf", "lightgcn", "mf"])
def test_fit_leaves_the_best_weights_and_tests_them_once(model, monkeypatch):
    calls = []
    original = Evaluator.evaluate

    def counting(self, user_emb, item_emb):
        calls.append(self)
        return original(self, user_emb, item_emb)

    monkeypatch.setattr(Evaluator, "evaluate", counting)
    monkeypatch.setattr(Evaluator, "__call__", counting)
    trainer = Trainer(config(model=model, epochs=8, lr=0.2), dataset=tiny_split(),
                      log=lambda *a: None)
    summary = trainer.fit()
    test_calls = [c for c in calls if c is trainer.evaluators["test"]]
    assert len(test_calls) == 1  # under the validation protocol the test split is scored once
    best = trainer.best_state
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, best[name]), name
    now = trainer.evaluate("test")
    assert summary["recall@20"] == now["recall@20"] and summary["ndcg@20"] == now["ndcg@20"]
    valid_history = [h["valid_recall@20"] for h in trainer.history if "valid_recall@20" in h]
    assert summary["valid_recall@20"] == max(valid_history)
    assert summary["best_epoch"] == trainer.best["epoch"]
    assert not any(k.startswith("test_") for h in trainer.history for k in h)


def test_best_epoch_is_not_the_last_one_when_validation_drops(monkeypatch):
    # Force the validation curve: best at epoch 2 of 5. The weights must be epoch 2's.
    scores = iter([0.1, 0.3, 0.2, 0.2, 0.1])
    trainer = make(epochs=5, patience=10)
    snapshots = {}
    original = trainer.evaluate

    def fake(split):
        if split == "valid":
            snapshots[trainer.epoch] = {k: v.clone() for k, v in trainer.model.state_dict().items()}
            return {"recall@20": next(scores), "ndcg@20": 0.0}
        return original(split)

    monkeypatch.setattr(trainer, "evaluate", fake)
    summary = trainer.fit()
    assert summary["best_epoch"] == 2 and trainer.epoch == 5
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, snapshots[2][name]), name
    assert not torch.equal(snapshots[2]["user_embedding.weight"], snapshots[5]["user_embedding.weight"])


def test_paper_protocol_reports_the_last_evaluation():
    trainer = Trainer(config(epochs=5, eval_every=2), dataset=tiny_split(valid=False),
                      log=lambda *a: None)
    summary = trainer.fit()
    evals = [h for h in trainer.history if "test_recall@20" in h]
    assert [h["epoch"] for h in evals] == [2, 4, 5]
    assert summary["protocol"] == "given-split" and summary["best_epoch"] == 5
    assert summary["recall@20"] == evals[-1]["test_recall@20"]


@pytest.mark.parametrize("sampling", ["pair", "user"])
def test_resume_is_exact(tmp_path, sampling):
    full = Trainer(config(epochs=4, sampling=sampling, model="ngcf", node_dropout=0.2),
                   dataset=tiny_split(), log=lambda *a: None)
    expected = full.fit()
    ckpt = tmp_path / "run.pt"
    first = Trainer(config(epochs=2, sampling=sampling, model="ngcf", node_dropout=0.2,
                           checkpoint=str(ckpt)), dataset=tiny_split(), log=lambda *a: None)
    first.fit()
    resumed = Trainer(config(epochs=4, sampling=sampling, model="ngcf", node_dropout=0.2,
                             checkpoint=str(ckpt), resume=True),
                      dataset=tiny_split(), log=lambda *a: None)
    got = resumed.fit()
    assert [h["loss"] for h in got["history"]] == [h["loss"] for h in expected["history"]]
    assert got["recall@20"] == expected["recall@20"]


def test_resume_refuses_a_different_config(tmp_path):
    ckpt = tmp_path / "run.pt"
    Trainer(config(epochs=1, checkpoint=str(ckpt)), dataset=tiny_split(), log=lambda *a: None).fit()
    other = Trainer(config(epochs=2, lr=0.01, checkpoint=str(ckpt), resume=True),
                    dataset=tiny_split(), log=lambda *a: None)
    with pytest.raises(ValueError, match="lr=0.05"):
        other.fit()


def test_sampling_modes_differ_and_both_learn():
    losses = {}
    for mode in ("pair", "user"):
        trainer = Trainer(config(epochs=3, sampling=mode), dataset=tiny_split(), log=lambda *a: None)
        trainer.fit()
        losses[mode] = [h["loss"] for h in trainer.history]
        assert all(np.isfinite(losses[mode])) and losses[mode][-1] < losses[mode][0]
    assert losses["pair"] != losses["user"]


@pytest.mark.parametrize("bad,match", [(dict(sampling="random"), "sampling"),
                                       (dict(model="gcn"), "model"),
                                       (dict(node_dropout=1.0), "node_dropout"),
                                       (dict(device="tpu"), "device"),
                                       (dict(resume=True), "resume")])
def test_config_errors_name_the_field(bad, match):
    with pytest.raises(ValueError, match=match):
        config(**bad)


def test_cuda_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="no CUDA device"):
        Trainer(config(device="cuda"), dataset=tiny_split())
