"""gnn.cli.recommend (``python -m gnn.recommend``) end to end: a model trained with
``gnn.train --save-model`` / ``--checkpoint`` never recommends an item the user interacted with in
any split (issue 13, finding 1), and ``--json`` gives original item ids, titles and scores; string
ids (issue 17, problem 4) come back as the file's own strings, through save/load too."""
import csv
import json
from collections import defaultdict

import pytest
import torch

from cli_runs import movie_titles, rated_items, run_module, synthetic_ratings
from gnn import TrainConfig, Trainer, load_dataset, load_model, save_model
from gnn.cli.recommend import main as recommend_main
from gnn.cli.train import main as train_main
from gnn.data import find_dataset_file


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    """(ratings file, saved model): MF trained for two epochs on a small synthetic file."""
    folder = tmp_path_factory.mktemp("synthetic")
    data = synthetic_ratings(folder / "ratings.csv", n_users=60, n_items=50, per_user=20)
    saved = folder / "mf.pt"
    assert train_main(["--model", "mf", "--dataset", str(data), "--epochs", "2", "--device", "cpu",
                       "--no-progress", "--seed", "1", "--save-model", str(saved)]) == 0
    return data, saved


@pytest.fixture(scope="module")
def movielens_run(tmp_path_factory):
    """(ratings.csv, movies.csv, checkpoint, saved model): MF on ml-latest-small, two epochs."""
    ratings = find_dataset_file("ml-latest-small", "ratings.csv")
    movies = find_dataset_file("ml-latest-small", "movies.csv")
    if ratings is None or movies is None:
        pytest.skip("ml-latest-small not found under $GNN_DATA")
    folder = tmp_path_factory.mktemp("movielens")
    ckpt, saved = folder / "mf-ckpt.pt", folder / "mf.pt"
    assert train_main(["--model", "mf", "--dataset", "ml-latest-small",
                       "--data-root", str(ratings.parents[1]), "--epochs", "2", "--batch-size", "4096",
                       "--device", "cpu", "--no-progress", "--checkpoint", str(ckpt),
                       "--save-model", str(saved)]) == 0
    return ratings, movies, ckpt, saved


def recommend_json(capsys, path, user, k):
    capsys.readouterr()
    assert recommend_main(["--checkpoint", str(path), "--user", str(user), "-k", str(k), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_lists_every_unrated_item_and_nothing_else(synthetic_run, capsys):
    data, saved = synthetic_run
    rated = rated_items(data)
    all_items = set().union(*rated.values())
    k = len(all_items)
    for user in (7, 8, 30, 66):  # original ids (the file's users start at 7)
        out = recommend_json(capsys, saved, user, k)
        assert (out["user"], out["dataset"], out["k"]) == (str(user), "ratings", k)
        items = [row["item"] for row in out["items"]]
        assert not set(items) & rated[user]
        # with k = every item, the list is exactly the unrated items: nothing left out either
        assert sorted(items) == sorted(all_items - rated[user])
        assert [row["rank"] for row in out["items"]] == list(range(1, len(items) + 1))
        assert all(row["title"] is None for row in out["items"])  # a plain file has no titles
        scores = [row["score"] for row in out["items"]]
        assert scores == sorted(scores, reverse=True)


def test_json_scores_are_the_models(synthetic_run, capsys):
    _, saved = synthetic_run
    model = load_model(saved)
    out = recommend_json(capsys, saved, 20, 8)
    u = model.catalog.user_index_of(20)
    items = model.catalog.item_index([row["item"] for row in out["items"]])
    want = model.score(torch.full((len(items),), u), torch.from_numpy(items))
    assert [row["score"] for row in out["items"]] == pytest.approx(want.tolist(), rel=1e-6)


def test_python_dash_m_gnn_recommend_json(synthetic_run, capsys):
    data, saved = synthetic_run
    result = run_module("gnn.recommend", "--checkpoint", saved, "--user", 9, "-k", 5, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == recommend_json(capsys, saved, 9, 5)
    assert not {row["item"] for row in json.loads(result.stdout)["items"]} & rated_items(data)[9]


@pytest.mark.slow
def test_movielens_recommendations_never_repeat_a_rating(movielens_run, capsys):
    # Issue 13, finding 1: 18 % of top-20 lists were movies the user had rated (valid / test).
    ratings, movies, ckpt, saved = movielens_run
    rated, titles = rated_items(ratings, "userId", "movieId"), movie_titles(movies)
    for path in (ckpt, saved):
        for user in (1, 414, 599, 610):  # 414 and 599 rated over two thousand movies each
            out = recommend_json(capsys, path, user, 50)
            assert out["dataset"] == "ml-latest-small" and len(out["items"]) == 50
            for row in out["items"]:
                assert row["item"] not in rated[user], (user, row)
                assert row["title"] == titles[row["item"]]
            scores = [row["score"] for row in out["items"]]
            assert scores == sorted(scores, reverse=True)


@pytest.mark.slow
def test_movielens_text_output_shows_titles(movielens_run, capsys):
    ratings, movies, ckpt, _ = movielens_run
    capsys.readouterr()
    assert recommend_main(["--checkpoint", str(ckpt), "--user", "1", "-k", "10"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("top 10 for user 1 (ml-latest-small)") and len(lines) == 11
    titles = movie_titles(movies)
    shown = [int(line.split("item ")[1].split()[0]) for line in lines[1:]]
    assert len(set(shown)) == 10 and not set(shown) & rated_items(ratings, "userId", "movieId")[1]
    for item, line in zip(shown, lines[1:]):
        assert titles[item] in line


def test_unknown_user_exits_2(synthetic_run, capsys):
    _, saved = synthetic_run
    assert recommend_main(["--checkpoint", str(saved), "--user", "999999"]) == 2
    assert "unknown user" in capsys.readouterr().err
    assert recommend_main(["--checkpoint", str(saved), "--user", "abc"]) == 2
    assert "unknown user" in capsys.readouterr().err


def test_missing_or_foreign_file_exits_2(tmp_path, capsys):
    assert recommend_main(["--checkpoint", str(tmp_path / "none.pt"), "--user", "1"]) == 2
    assert "not found" in capsys.readouterr().err
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    assert recommend_main(["--checkpoint", str(foreign), "--user", "1"]) == 2
    assert "not a gnn" in capsys.readouterr().err


def test_a_model_saved_without_its_dataset_exits_2(synthetic_run, tmp_path, capsys):
    _, saved = synthetic_run
    bare = tmp_path / "bare.pt"
    save_model(load_model(saved), bare)  # no dataset: no ids, titles or seen items
    assert recommend_main(["--checkpoint", str(bare), "--user", "7"]) == 2
    assert "saved without its dataset" in capsys.readouterr().err


def string_id_ratings(path):
    """The synthetic ratings with text ids: users ``user_0007``..., items ``B0001001``... (ASIN-like),
    and unicode in some ids; returns ``{user: {items}}`` read back with the csv module."""
    plain = synthetic_ratings(path.with_name("plain.csv"), n_users=60, n_items=50, per_user=20)
    rows = list(csv.DictReader(open(plain, newline="")))
    text = ["user,item,rating,timestamp"]
    for row in rows:
        u = f"user_{int(row['user']):04d}" + ("é" if int(row["user"]) % 5 == 0 else "")
        text.append(f"{u},B000{row['item']},{row['rating']},{row['timestamp']}")
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    rated = defaultdict(set)
    for line in text[1:]:
        u, i = line.split(",")[:2]
        rated[u].add(i)
    return rated


@pytest.fixture(scope="module")
def string_id_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("strings")
    data = folder / "events.csv"
    rated = string_id_ratings(data)
    saved = folder / "mf.pt"
    assert train_main(["--model", "mf", "--dataset", str(data), "--epochs", "2", "--device", "cpu",
                       "--no-progress", "--seed", "1", "--save-model", str(saved)]) == 0
    return data, rated, saved


def test_string_ids_come_back_from_recommend(string_id_run, capsys):
    data, rated, saved = string_id_run
    all_items = set().union(*rated.values())
    for user in ("user_0007", "user_0010é", "user_0033"):
        out = recommend_json(capsys, saved, user, len(all_items))
        items = [row["item"] for row in out["items"]]
        assert out["user"] == user and all(isinstance(i, str) for i in items)
        assert sorted(items) == sorted(all_items - rated[user])  # every unrated item, nothing else
    capsys.readouterr()
    assert recommend_main(["--checkpoint", str(saved), "--user", "user_0007", "-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "top 3 for user user_0007 (events):" and " item B000" in lines[1]
    assert recommend_main(["--checkpoint", str(saved), "--user", "7"]) == 2  # not 'user_0007'
    assert "unknown user '7'" in capsys.readouterr().err


def test_model_trained_on_string_ids_saves_and_loads(string_id_run, tmp_path):
    data, rated, _ = string_id_run
    ds = load_dataset(data, seed=2)
    trainer = Trainer(TrainConfig(model="lightgcn", dataset=str(data), epochs=1, dim=8, device="cpu",
                                  progress=False), dataset=ds, log=lambda *a: None)
    trainer.fit()
    path = tmp_path / "lightgcn.pt"
    save_model(trainer.model, path, dataset=ds)
    state = torch.load(path, weights_only=True)  # plain data only
    assert state["catalog"]["user_ids"] == ds.user_ids.tolist()
    loaded = load_model(path)
    assert loaded.catalog.user_ids.tolist() == ds.user_ids.tolist()
    assert loaded.catalog.item_ids.tolist() == ds.item_ids.tolist()
    u = loaded.catalog.user_index_of("user_0010é")
    assert ds.user_ids[u] == "user_0010é" and ds.user_index(["user_0010é"]).tolist() == [u]
    assert loaded.catalog.item_index(["B0001001"]).tolist() == ds.item_index(["B0001001"]).tolist()
    users = torch.arange(ds.n_users)
    assert torch.equal(loaded.recommend(users, 5, exclude=ds.seen_csr),
                       trainer.model.recommend(users, 5, exclude=ds.seen_csr))
