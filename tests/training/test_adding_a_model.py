"""docs/ARCHITECTURE.md, "Adding a model", followed literally: its code block runs as written (on a
small ratings.csv in a fresh folder): the model is registered, trained by the Trainer,
checkpointed, resumed exactly, and loaded back as its own class with its learned weights; the
CLI then offers it as a --model choice."""
import dataclasses
import re
from pathlib import Path

import pytest
import torch

import gnn
from cli.cli_runs import synthetic_ratings
from gnn.cli.train import build_parser
from gnn.models import MODELS, unregister_model

DOC = Path(__file__).resolve().parents[2] / "docs" / "ARCHITECTURE.md"


def section_code() -> str:
    text = DOC.read_text()
    section = text[text.index("## Adding a model"):]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the section has one code block"
    return blocks[0]


@pytest.fixture
def in_a_fresh_folder(tmp_path, monkeypatch):
    synthetic_ratings(tmp_path / "ratings.csv", n_users=40, n_items=30, per_user=12)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    if "weighted-lightgcn" in MODELS:
        unregister_model("weighted-lightgcn")


def test_the_documented_model_trains_checkpoints_resumes_and_loads(in_a_fresh_folder, capsys):
    namespace = {"__name__": "adding_a_model"}
    exec(compile(section_code(), str(DOC), "exec"), namespace)
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed.startswith("WeightedLightGCN [")

    cls, config, summary, model = (namespace[k] for k in ("WeightedLightGCN", "config",
                                                          "summary", "model"))
    assert MODELS["weighted-lightgcn"] is cls and type(model) is cls
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3, 4]
    assert not torch.equal(model.beta, torch.zeros_like(model.beta))  # trained
    assert not model.training and model.init_args == dict(embedding_dim=16, num_layers=2,
                                                          node_dropout=0.0)

    # The resumed run is the uninterrupted one, and load_model holds its reported weights.
    straight = gnn.Trainer(dataclasses.replace(config, epochs=4, checkpoint=None),
                           log=lambda *a: None)
    expected = straight.fit()
    assert [h["loss"] for h in summary["history"]] == [h["loss"] for h in expected["history"]]
    assert summary["recall@20"] == expected["recall@20"]
    for name, value in straight.model.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name

    # The command line knows it while it is registered.
    choices = next(a for a in build_parser()._actions if a.dest == "model").choices
    assert "weighted-lightgcn" in choices
