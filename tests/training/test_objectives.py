"""The Trainer's objective options: K negatives per pair (TrainConfig.negatives, --negatives) and
the loss (TrainConfig.loss, --loss, its options): what reaches the model, that one negative is
the code path it always was, exact resume, and the errors."""
import numpy as np
import pytest
import torch

from gnn import GraphRecommender, TrainConfig, Trainer
from gnn.cli.train import build_parser, config_from_args
from gnn.data import UniformNegativeSampler
from gnn.loss import BPR, CosineContrastive
from gnn.training.config import epoch_seed
from tiny_datasets import tiny_split


def config(**kw):
    base = dict(model="mf", dataset="tiny", epochs=2, batch_size=48, lr=0.05, dim=8,
                device="cpu", progress=False, eval_every=1)
    base.update(kw)
    return TrainConfig(**base)


def make(**kw):
    return Trainer(config(**kw), dataset=tiny_split(), log=lambda *a: None)


def test_one_negative_is_the_single_draw_path(monkeypatch):
    # negatives=1 trains on what the epoch's single draw gives (the code path of every earlier
    # release): the same batches and losses as a loop written against the samplers directly.
    trainer = make(model="lightgcn", layers=2)
    seen = []
    original = GraphRecommender.loss

    def recording(self, u, i, j, *args, **kw):
        seen.append(j.clone())
        return original(self, u, i, j, *args, **kw)

    monkeypatch.setattr(GraphRecommender, "loss", recording)
    trainer.train_epoch()
    seed = epoch_seed(0, 1)
    order = torch.Generator().manual_seed(seed + 1)
    users, _ = trainer.positives.epoch(order)
    negatives = UniformNegativeSampler(trainer.dataset.train_csr, seed=seed + 2).sample(users)
    assert all(j.dim() == 1 for j in seen)
    assert torch.equal(torch.cat(seen), negatives)


@pytest.mark.parametrize("loss", ["bpr", "ccl"])
def test_k_negatives_reach_the_model_exact_and_per_batch(loss, monkeypatch):
    trainer = make(negatives=5, loss=loss)
    assert isinstance(trainer.objective, BPR if loss == "bpr" else CosineContrastive)
    calls = []
    original = GraphRecommender.loss

    def recording(self, u, i, j, *args, **kw):
        calls.append((u.clone(), j.clone(), kw["objective"]))
        return original(self, u, i, j, *args, **kw)

    monkeypatch.setattr(GraphRecommender, "loss", recording)
    trainer.train_epoch()
    train = trainer.dataset.train_csr
    positives = set(zip(*(a.tolist() for a in (train.users(), train.indices))))
    assert sum(u.numel() for u, _, _ in calls) == train.nnz
    for u, j, objective in calls:
        assert j.shape == (u.numel(), 5) and objective is trainer.objective
        assert not any((int(a), int(b)) in positives
                       for a, row in zip(u, j) for b in row)


@pytest.mark.parametrize("kw", [dict(negatives=4), dict(loss="ccl", negatives=8, ccl_margin=0.2,
                                                       ccl_negative_weight=4.0)])
def test_k_negatives_and_ccl_learn_and_resume_exactly(kw, tmp_path):
    full = make(epochs=4, **kw)
    summary = full.fit()
    losses = [h["loss"] for h in full.history]
    assert losses[-1] < losses[0] and summary["recall@20"] > 0
    first = make(epochs=2, checkpoint=str(tmp_path / "run.pt"), **kw)
    first.fit()
    resumed = make(epochs=4, checkpoint=str(tmp_path / "run.pt"), resume=True, **kw)
    resumed.fit()
    assert [h["loss"] for h in resumed.history] == losses
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


def test_ccl_works_with_every_model():
    for model, extra in (("ngcf", dict(layers=1)), ("lightgcn", dict(layers=2)), ("mf", {})):
        trainer = make(model=model, loss="ccl", negatives=3, epochs=1, **extra)
        assert np.isfinite(trainer.train_epoch())


@pytest.mark.parametrize("kw,match", [
    (dict(negatives=0), "negatives must be an int >= 1, but got 0"),
    (dict(negatives=2.0), "negatives must be an int >= 1"),
    (dict(loss="hinge"), r"unknown loss 'hinge' \(known: \['bpr', 'ccl'\]\)"),
    (dict(ccl_margin=0.5), "ccl_margin=0.5 applies to loss='ccl' only, not loss='bpr'"),
    (dict(loss="ccl", ccl_negative_weight=-1.0), r"negative_weight must be > 0.*set by ccl_margin"),
    (dict(loss="ccl", ccl_margin=1.0), r"margin must be in \[-1, 1\)"),
])
def test_config_errors_name_the_field(kw, match):
    with pytest.raises(ValueError, match=match):
        config(**kw)


def test_cli_flags_set_the_fields():
    args = build_parser().parse_args(["--model", "mf", "--negatives", "16", "--loss", "ccl",
                                      "--ccl-margin", "0.4", "--ccl-negative-weight", "50"])
    cfg = config_from_args(args)
    assert (cfg.negatives, cfg.loss, cfg.ccl_margin, cfg.ccl_negative_weight) == (16, "ccl", 0.4,
                                                                                 50.0)
    defaults = config_from_args(build_parser().parse_args(["--model", "mf"]))
    assert (defaults.negatives, defaults.loss, defaults.ccl_margin) == (1, "bpr", None)


def test_a_checkpoint_of_another_objective_is_not_resumed(tmp_path):
    make(epochs=1, negatives=2, checkpoint=str(tmp_path / "run.pt")).fit()
    other = make(epochs=2, negatives=3, checkpoint=str(tmp_path / "run.pt"), resume=True)
    with pytest.raises(ValueError, match="negatives=2, this run has negatives=3"):
        other.fit()


def test_xsimgcl_from_the_config_trains_and_resumes_exactly(tmp_path):
    kw = dict(model="xsimgcl", layers=2, cl_noise=0.1, cl_weight=0.05, cl_temperature=0.3,
              cl_layer=2, negatives=2)
    full = make(epochs=3, **kw)
    model = full.model
    assert (model.num_layers, model.noise, model.cl_weight, model.temperature,
            model.cl_layer) == (2, 0.1, 0.05, 0.3, 2)
    full.fit()
    make(epochs=1, checkpoint=str(tmp_path / "x.pt"), **kw).fit()
    resumed = make(epochs=3, checkpoint=str(tmp_path / "x.pt"), resume=True, **kw)
    resumed.fit()
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kw,match", [
    (dict(model="lightgcn", cl_weight=0.1), "cl_weight=0.1 does not apply to model 'lightgcn'"),
    (dict(model="mf", cl_temperature=0.2), "cl_temperature=0.2 does not apply to model 'mf'"),
    (dict(model="xsimgcl", cl_temperature=0.0), "cl_temperature must be > 0"),
    (dict(model="xsimgcl", cl_noise=-1.0), "cl_noise must be >= 0"),
    (dict(model="xsimgcl", cl_layer=0), "cl_layer must be >= 1"),
])
def test_xsimgcl_options_are_checked(kw, match):
    with pytest.raises(ValueError, match=match):
        config(**kw)


def test_distributed_training_refuses_what_it_would_drop():
    from gnn.distributed import DistributedTrainer
    from gnn.distributed.model import check_shardable

    for kw in (dict(negatives=2), dict(loss="ccl")):
        with pytest.raises(ValueError, match="distributed training computes BPR with one"):
            DistributedTrainer(config(**kw), dataset=tiny_split())
    model = make(model="xsimgcl", layers=2).model
    with pytest.raises(ValueError, match="XSimGCL overrides loss: gnn.distributed computes"):
        check_shardable(model)
