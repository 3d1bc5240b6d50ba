"""TrainConfig and the model registry: models built by their class, unknown names refused with the
known ones, options a model does not have refused (issue 17 problems 2 and 8, issue 19), saved
configs of earlier runs still loadable, and the allocator setting made only when asked."""
import json
from pathlib import Path

import pytest
import torch

import gnn.training.trainer as trainer_module
from gnn import MF, NGCF, LightGCN, TrainConfig, Trainer, build_adjacency, register_model
from gnn.models import BASELINES, MODELS, get_model, model_name, unregister_model
from gnn.training.config import MODEL_OPTIONS, build_model
from tiny_datasets import tiny_split

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def registry():
    """Registers models for one test and removes them afterwards."""
    added = []

    def register(name, cls, **kw):
        added.append(name)
        return register_model(name, cls, **kw)

    yield register
    for name in added:
        unregister_model(name)


def test_unknown_model_is_an_error_listing_the_known_ones():
    # Issue 17, problem 2: an unknown name used to fall through to MF.
    with pytest.raises(ValueError, match=r"unknown model 'gcn' \(known: \['lightgcn', 'mf', 'ngcf', 'xsimgcl'\]"):
        TrainConfig(model="gcn")
    with pytest.raises(ValueError, match="closed-form model, not a bpr one"):
        TrainConfig(model="itemknn")
    assert list(MODELS) == ["ngcf", "lightgcn", "mf", "xsimgcl"] and list(BASELINES) == ["itemknn", "gfcf", "bspm"]


class Mine(LightGCN):
    """A model of one's own (here simply LightGCN under another class)."""


def test_a_registered_model_is_built_trained_and_named(registry):
    # Issue 17, problem 2: a model added to the registry was accepted, then built as an MF.
    registry("mine", Mine)
    config = TrainConfig(model="mine", dataset="tiny", epochs=1, batch_size=64, dim=8,
                         device="cpu", progress=False)
    assert config.layers == 3 and config.node_dropout == 0.0  # LightGCN's defaults, inherited
    trainer = Trainer(config, dataset=tiny_split(), log=lambda *a: None)
    assert type(trainer.model) is Mine and model_name(trainer.model) == "mine"
    trainer.fit()
    assert get_model("mine") is Mine and "mine" in MODELS


def test_register_model_refuses_what_it_cannot_keep(registry):
    with pytest.raises(ValueError, match="already NGCF"):
        register_model("ngcf", Mine)
    with pytest.raises(ValueError, match="already registered as 'lightgcn'"):
        register_model("lightgcn2", LightGCN)
    with pytest.raises(TypeError, match="must subclass gnn.GraphRecommender"):
        register_model("plain", dict)
    with pytest.raises(ValueError, match="kind"):
        register_model("x", Mine, kind="magic")
    registry("closed", dict, kind="closed-form")  # closed-form models need no base class
    assert BASELINES["closed"] is dict and "closed" not in MODELS
    with pytest.raises(ValueError, match="not a registered model"):
        model_name(Mine)


@pytest.mark.parametrize("cls", [NGCF, LightGCN, MF])
def test_model_options_default_to_the_models_own(cls):
    name = model_name(cls)
    config = TrainConfig(model=name)
    defaults = cls.option_defaults()
    for field in MODEL_OPTIONS:
        assert getattr(config, field) == defaults.get(field), field
    model = build_model(TrainConfig(model=name, dim=4), build_adjacency(tiny_split().train_csr))
    for field, arg in cls.config_options.items():
        if field in MODEL_OPTIONS:
            assert getattr(model, arg) == getattr(config, field)


@pytest.mark.parametrize("model,field,value", [("lightgcn", "message_dropout", 0.2),
                                               ("mf", "layers", 3), ("mf", "node_dropout", 0.1),
                                               ("mf", "message_dropout", 0.1)])
def test_an_option_the_model_does_not_have_is_an_error(model, field, value):
    # Issue 17, problem 8: --message-dropout was silently ignored for LightGCN.
    with pytest.raises(ValueError, match=f"{field}={value} does not apply to model '{model}'"):
        TrainConfig(model=model, **{field: value})


def test_the_none_value_of_an_option_the_model_does_not_have_is_accepted():
    # "No message dropout" is true of LightGCN; "no layers" of MF (the Gowalla configs say so).
    assert TrainConfig(model="lightgcn", message_dropout=0.0).message_dropout is None
    assert TrainConfig(model="mf", layers=0, node_dropout=0.0).layers is None


def test_the_reproduction_configs_still_make_train_configs():
    for path in sorted((ROOT / "configs").glob("*/*.json")):
        config = json.loads(path.read_text())
        if "train" in config:
            TrainConfig(model=config["model"], **config["train"])


def test_saved_configs_of_earlier_runs_load_and_resume():
    # Earlier versions saved every option for every model (LightGCN with message_dropout=0.1,
    # MF with layers=3); those runs ignored them.
    old = TrainConfig(model="lightgcn").to_dict()
    old.update(message_dropout=0.1, layers=3, node_dropout=0.0)
    old.pop("keep_freed_memory")  # a field newer than the run
    config = TrainConfig.from_dict(old)
    assert config.message_dropout is None and config.layers == 3
    config.check_resumable(old, "old.pt")
    old_mf = dict(TrainConfig(model="mf").to_dict(), layers=3, message_dropout=0.1)
    TrainConfig(model="mf").check_resumable(old_mf, "old-mf.pt")
    with pytest.raises(ValueError, match="layers=3, this run has layers=2"):
        TrainConfig(model="lightgcn", layers=2).check_resumable(old, "old.pt")


def test_the_allocator_setting_is_made_only_when_asked(monkeypatch):
    calls = []
    monkeypatch.setattr(trainer_module, "keep_freed_memory", lambda: calls.append(1) or True)
    base = dict(model="mf", dataset="tiny", epochs=1, device="cpu", progress=False)
    Trainer(TrainConfig(**base), dataset=tiny_split(), log=lambda *a: None)
    assert calls == []  # a library user who did not ask gets no process-wide setting
    Trainer(TrainConfig(**base, keep_freed_memory=True), dataset=tiny_split(),
            log=lambda *a: None)
    assert calls == [1]


def test_keep_freed_memory_reports_whether_glibc_took_it():
    from gnn.training.allocator import keep_freed_memory

    assert keep_freed_memory() in (True, False)
    assert torch.ones(3).sum() == 3  # the process carries on
