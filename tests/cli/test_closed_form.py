"""Closed-form models (ItemKNN, GF-CF, BSPM) on the same paths as the trained ones (issue 18):
``python -m gnn.train --model gfcf``, save_model / load_model, ``gnn.recommend``; the flags that
do not apply are refused."""
import json

import numpy as np
import pytest

from cli_runs import synthetic_ratings
from gnn import GFCF, load_dataset, load_model, save_model
from gnn.cli.recommend import main as recommend_main
from gnn.cli.train import main as train_main
from gnn.models import BASELINES

OPTIONS = {"gfcf": {"k": 8}, "bspm": {"k": 8}, "itemknn": {"k": 10}}


@pytest.fixture(scope="module")
def ratings(tmp_path_factory):
    return synthetic_ratings(tmp_path_factory.mktemp("cf") / "ratings.csv", n_users=50,
                             n_items=40, per_user=12)


def test_the_filters_are_registered_closed_form_models():
    assert {"itemknn", "gfcf", "bspm"} <= set(BASELINES)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_train_cli_fits_evaluates_and_saves(name, ratings, tmp_path, capsys):
    summary, saved = tmp_path / "s.json", tmp_path / "m.pt"
    assert train_main(["--model", name, "--dataset", str(ratings), "--fit-options",
                       json.dumps(OPTIONS[name]), "--json", str(summary), "--save-model",
                       str(saved), "--k", "5"]) == 0
    out = json.loads(summary.read_text())
    assert out["model"] == name and out["training_free"] and out["protocol"] == "validation"
    assert 0 <= out["recall@20"] <= 1 and "recall@5" in out and "valid_recall@20" in out
    assert out["hyperparameters"]["k"] == OPTIONS[name]["k"]
    # the saved file is fitted again on load: the same recommendations
    ds = load_dataset(str(ratings))
    model = load_model(saved)
    assert type(model).__name__ == type(BASELINES[name]()).__name__
    fresh = BASELINES[name](**OPTIONS[name]).fit(ds.train_csr)
    users = np.arange(ds.n_users)
    np.testing.assert_array_equal(model.recommend(users, k=7, exclude=ds.seen_csr),
                                  fresh.recommend(users, k=7, exclude=ds.seen_csr))
    capsys.readouterr()
    assert recommend_main(["--checkpoint", str(saved), "--user", "7", "-k", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["items"]
    assert len(rows) == 3 and rows[0]["score"] >= rows[1]["score"] >= rows[2]["score"]


def test_flags_of_training_are_refused(ratings, capsys):
    assert train_main(["--model", "gfcf", "--dataset", str(ratings), "--lr", "0.1",
                       "--epochs", "3"]) == 2
    assert capsys.readouterr().err.strip() == ("error: --epochs, --lr do not apply to gfcf, a "
                                               "closed-form model (fitted once, no training)")


@pytest.mark.parametrize("options,message", [
    ("{not json", "--fit-options is not JSON"),
    ("[1, 2]", "--fit-options must be a JSON object"),
    ('{"kk": 3}', "gfcf: .*unexpected keyword argument 'kk'"),
    ('{"k": 0}', "GFCF\\(\\): k must be"),
])
def test_bad_fit_options_are_one_line_errors(ratings, capsys, options, message):
    assert train_main(["--model", "gfcf", "--dataset", str(ratings), "--fit-options",
                       options]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert __import__("re").search(message, err), err


def test_fit_options_are_refused_for_trained_models(ratings, capsys):
    assert train_main(["--model", "mf", "--dataset", str(ratings), "--fit-options", "{}"]) == 2
    assert "--fit-options applies to the closed-form models" in capsys.readouterr().err


def test_save_model_needs_a_fitted_model(tmp_path):
    with pytest.raises(ValueError, match="fit the gfcf model before saving it"):
        save_model(GFCF(k=4), tmp_path / "x.pt")
