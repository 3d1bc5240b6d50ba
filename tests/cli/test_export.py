"""gnn.cli.export (``python -m gnn.export``): the arrays an inner-product index needs, with the
dataset's own ids, and the check that such an index answers as ``recommend`` does (issue 17,
problem 10)."""
import json

import numpy as np
import pytest
import torch

from cli_runs import run_module, synthetic_ratings
from gnn import load_model
from gnn.cli.export import exact_top_k, main as export_main
from gnn.cli.train import main as train_main


@pytest.fixture(scope="module", params=["mf", "lightgcn"])
def saved(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"export-{request.param}")
    data = synthetic_ratings(folder / "ratings.csv", n_users=40, n_items=30, per_user=12)
    path = folder / "model.pt"
    assert train_main(["--model", request.param, "--dataset", str(data), "--epochs", "2",
                       "--device", "cpu", "--no-progress", "--save-model", str(path)]) == 0
    return path


def test_export_writes_embeddings_ids_and_seen_items(saved, tmp_path):
    assert export_main([str(saved), "--out", str(tmp_path), "--verify", "0"]) == 0
    model = load_model(saved)
    model.eval()
    users, items = model.embeddings()
    np.testing.assert_array_equal(np.load(tmp_path / "user_embeddings.npy"), users.numpy())
    np.testing.assert_array_equal(np.load(tmp_path / "item_embeddings.npy"), items.numpy())
    np.testing.assert_array_equal(np.load(tmp_path / "user_ids.npy"), model.catalog.user_ids)
    np.testing.assert_array_equal(np.load(tmp_path / "item_ids.npy"), model.catalog.item_ids)
    assert np.load(tmp_path / "item_ids.npy").min() >= 1000  # the file's ids, not indices
    seen = model.catalog.seen
    np.testing.assert_array_equal(np.load(tmp_path / "seen_indptr.npy"), seen.indptr)
    meta = json.loads((tmp_path / "export.json").read_text())
    assert (meta["n_users"], meta["n_items"], meta["dim"]) == (users.shape[0], *items.shape)


def test_an_exact_inner_product_index_answers_as_recommend(saved, tmp_path):
    assert export_main([str(saved), "--out", str(tmp_path), "--verify", "0"]) == 0
    model = load_model(saved)
    model.eval()
    user_emb = np.load(tmp_path / "user_embeddings.npy")
    item_emb = np.load(tmp_path / "item_embeddings.npy")
    users = np.arange(user_emb.shape[0])
    seen = (np.load(tmp_path / "seen_indptr.npy"), np.load(tmp_path / "seen_indices.npy"))
    got = exact_top_k(user_emb, item_emb, users, 5, exclude=seen)
    want = model.recommend(torch.from_numpy(users), k=5, exclude=model.catalog.seen).numpy()
    mask = want >= 0
    assert all(np.array_equal(g[m], w[m]) for g, w, m in zip(got, want, mask))


def test_cli_verifies_and_reports(saved, tmp_path):
    res = run_module("gnn.export", saved, "--out", tmp_path / "x", "--verify", "25")
    assert res.returncode == 0, res.stderr
    assert "verified: exact inner-product top-10 equals recommend() for 25 users" in res.stdout


def test_verify_fails_when_the_arrays_disagree(saved, tmp_path, monkeypatch, capsys):
    import gnn.cli.export as export_module

    real = export_module.export

    def corrupt(model, out):
        meta = real(model, out)
        items = np.load(out / "item_embeddings.npy")
        np.save(out / "item_embeddings.npy", items[::-1].copy())  # rows of other items
        return meta

    monkeypatch.setattr(export_module, "export", corrupt)
    assert export_main([str(saved), "--out", str(tmp_path), "--verify", "20"]) == 1
    assert "differs from recommend()" in capsys.readouterr().err


def test_missing_file_is_a_one_line_error(tmp_path, capsys):
    assert export_main([str(tmp_path / "none.pt"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
