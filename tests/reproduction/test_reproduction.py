"""gnn.reproduce end to end on a tiny synthetic train.txt/test.txt dataset, and config validation."""
import json

import numpy as np
import pytest

from gnn.cli.reproduce import main
from gnn.reproduction import ConfigError, load_config, resolve_dataset, run, validate_config

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

PAPER = {"recall@20": 0.1, "ndcg@20": 0.05, "source": "made up for the test"}


def write_text_split(folder, n_users=24, n_items=30, seed=0):
    """A dataset in the LightGCN text format: one line per user, ``uid item item ...``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "train.txt", "w") as tr, open(folder / "test.txt", "w") as te:
        for u in range(n_users):
            items = rng.choice(n_items, size=int(rng.integers(4, 10)), replace=False)
            tr.write(" ".join(map(str, [u, *items[:-2]])) + "\n")
            te.write(" ".join(map(str, [u, *items[-2:]])) + "\n")
    return folder


def write_config(path, **overrides):
    config = {"model": "lightgcn", "dataset": "tiny", "paper": PAPER,
              "train": {"epochs": 3, "batch_size": 16, "lr": 1e-2, "reg": 1e-4, "dim": 8,
                        "layers": 2, "eval_every": 2},
              "target": {"max_seconds": 600, "min_epochs_per_second": 0.001}}
    config.update(overrides)
    if config["model"] == "mf":  # MF has no layers (TrainConfig refuses the option)
        del config["train"]["layers"]
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def data(tmp_path):
    return write_text_split(tmp_path / "data" / "tiny")


@pytest.mark.parametrize("model", ["lightgcn", "ngcf", "mf"])
def test_end_to_end_writes_summary_and_curve(tmp_path, data, model):
    cfg = write_config(tmp_path / f"{model}-tiny.json", model=model)
    out = tmp_path / "out"
    logs = []
    summary = run(cfg, device="cpu", data_root=str(data.parent), out=out, log=logs.append)
    assert summary["epochs"] == 3 and summary["protocol"] == "given-split"
    assert summary["config_name"] == f"{model}-tiny" and summary["device_type"] == "cpu"
    assert 0 <= summary["recall@20"] <= 1 and 0 <= summary["ndcg@20"] <= 1
    assert summary["comparison"]["recall@20"]["paper"] == 0.1
    assert "partial" not in summary
    written = json.loads((out / f"{model}-tiny-cpu.json").read_text())
    assert written["recall@20"] == summary["recall@20"]
    assert written["config"]["split"] == "given"
    curve = json.loads((out / f"{model}-tiny-cpu-curve.json").read_text())
    assert curve["epoch"] == [1, 2, 3]
    assert curve["eval_epoch"] == [2, 3]  # every 2 epochs, and the last one
    assert len(curve["recall@20"]) == len(curve["ndcg@20"]) == 2
    assert curve["recall@20"][-1] == summary["recall@20"]
    try:
        import matplotlib  # noqa: F401
        assert (out / f"{model}-tiny-cpu-curve.png").stat().st_size > 0
    except ImportError:
        assert not (out / f"{model}-tiny-cpu-curve.png").exists()
    assert any("paper" in line and "recall@20" in line for line in logs)


def test_epochs_override_names_the_output_and_marks_it_partial(tmp_path, data, capsys):
    cfg = write_config(tmp_path / "lgn.json")
    out = tmp_path / "out"
    rc = main([str(cfg), "--epochs", "1", "--device", "cpu", "--data-root", str(data),
               "--out", str(out)])
    assert rc == 0
    summary = json.loads((out / "lgn-cpu-1ep.json").read_text())
    assert summary["epochs"] == 1 and "not comparable" in summary["partial"]
    assert (out / "lgn-cpu-1ep-curve.json").exists()
    printed = capsys.readouterr().out
    assert "recall@20" in printed and "paper" in printed


def test_itemknn_end_to_end(tmp_path, data):
    cfg = write_config(tmp_path / "knn.json", model="itemknn", itemknn={"k": 5},
                       paper={"recall@20": None, "ndcg@20": None})
    del_train = json.loads(cfg.read_text())
    del del_train["train"]
    cfg.write_text(json.dumps(del_train))
    summary = run(cfg, data_root=str(data), out=tmp_path / "out", log=lambda *_: None)
    assert summary["model"] == "itemknn" and summary["itemknn"]["k"] == 5
    assert 0 < summary["recall@20"] <= 1
    assert summary["n_users_evaluated"] == 24
    written = json.loads((tmp_path / "out" / "knn-cpu.json").read_text())
    assert written["ndcg@20"] == summary["ndcg@20"]
    assert not (tmp_path / "out" / "knn-cpu-curve.json").exists()
    with pytest.raises(ConfigError, match="do not apply to itemknn"):
        run(cfg, epochs=2, data_root=str(data), out=tmp_path / "out", log=lambda *_: None)


@pytest.mark.parametrize("model, section", [("gfcf", {"k": 4, "alpha": 0.5}),
                                            ("bspm", {"k": 5, "beta": 0.3, "sharpen_time": 1.0})])
def test_graph_filter_end_to_end(tmp_path, data, model, section):
    config = {"model": model, "dataset": "tiny", "training_free": True, model: section,
              "paper": PAPER, "target": {"max_seconds": 600, "max_peak_rss_mb": 1e6}}
    cfg = tmp_path / f"{model}.json"
    cfg.write_text(json.dumps(config))
    logs = []
    summary = run(cfg, data_root=str(data), out=tmp_path / "out", log=logs.append)
    assert summary["model"] == model and summary["training_free"] and summary["epochs"] is None
    assert summary[model]["k"] == section["k"] and summary["n_users_evaluated"] == 24
    assert summary["peak_rss_mb"] > 0 and summary["cpu_seconds"] > 0
    assert summary["comparison"]["within_max_seconds"]
    assert summary["comparison"]["within_max_peak_rss_mb"]
    # the same numbers as the model evaluated by hand on the given split
    from gnn.data import load_dataset
    from gnn.models.graph_filters import FILTERS
    ds = load_dataset(str(data), split="given")
    direct = FILTERS[model](**section).fit(ds.train_csr).evaluate(ds.test_csr)
    assert summary["recall@20"] == pytest.approx(direct["recall@20"], abs=1e-12)
    assert summary["ndcg@20"] == pytest.approx(direct["ndcg@20"], abs=1e-12)
    written = json.loads((tmp_path / "out" / f"{model}-cpu.json").read_text())
    assert written["recall@20"] == summary["recall@20"]
    assert not (tmp_path / "out" / f"{model}-cpu-curve.json").exists()
    assert any("peak RSS" in line for line in logs)
    with pytest.raises(ConfigError, match=f"do not apply to {model}"):
        run(cfg, epochs=2, data_root=str(data), out=tmp_path / "out", log=lambda *_: None)


FILTER = {"model": "gfcf", "dataset": "gowalla", "paper": PAPER, "training_free": True,
          "gfcf": {"alpha": 0.3, "k": 256}}


@pytest.mark.parametrize("change, message", [
    ({"training_free": None}, r'must say "training_free": true'),
    ({"training_free": False}, "training_free must be true for model 'gfcf'"),
    ({"training_free": "yes"}, "training_free must be true or false"),
    ({"train": {"epochs": 1}}, "a gfcf config has no 'train' section"),
    ({"gfcf": {"beta": 0.2}}, r"gfcf: unknown key 'beta'"),
    ({"gfcf": {"alpha": -1}}, r"gfcf: GFCF\(\): alpha must be a finite number >= 0"),
    ({"gfcf": {"k": 0}}, r"gfcf: GFCF\(\): k must be an int >= 1"),
    ({"gfcf": [1, 2]}, "gfcf must be an object"),
    ({"bspm": {"beta": 0.2}}, "an 'bspm' section only goes with model 'bspm'"),
    ({"itemknn": {"k": 3}}, "an 'itemknn' section only goes with model 'itemknn'"),
    ({"target": {"max_peak_rss_mb": 0}}, "target.max_peak_rss_mb must be a positive number"),
])
def test_filter_config_validation_errors(change, message):
    config = {**FILTER, **change}
    if change.get("training_free", True) is None:
        del config["training_free"]
    with pytest.raises(ConfigError, match=message):
        validate_config(config, "cfg.json")


def test_training_free_flag_by_model():
    validate_config(FILTER)
    validate_config({"model": "bspm", "dataset": "gowalla", "paper": PAPER, "training_free": True,
                     "bspm": {"sharpen_solver": "euler", "final_sharpening": False}})
    knn = {"model": "itemknn", "dataset": "gowalla", "paper": PAPER}
    validate_config(knn)
    validate_config({**knn, "training_free": True})
    with pytest.raises(ConfigError, match="training_free must be true for model 'itemknn'"):
        validate_config({**knn, "training_free": False})
    with pytest.raises(ConfigError, match="training_free must be false for model 'lightgcn'"):
        validate_config({**BASE, "training_free": True})


def test_shipped_configs_are_valid():
    from pathlib import Path
    folder = Path(__file__).resolve().parents[2] / "configs" / "gowalla"
    names = {p.stem for p in folder.glob("*.json")}
    assert {"ngcf", "ngcf-row", "lightgcn", "mf", "itemknn", "ngcf-fast", "lightgcn-fast",
            "gfcf", "bspm", "xsimgcl"} <= names
    for path in folder.glob("*.json"):
        config = load_config(path)
        assert config["name"] == path.stem
    ngcf, row = load_config(folder / "ngcf.json"), load_config(folder / "ngcf-row.json")
    assert ngcf["train"]["adjacency"] == "sym" and row["train"]["adjacency"] == "row"
    assert {k: v for k, v in ngcf["train"].items() if k != "adjacency"} == \
           {k: v for k, v in row["train"].items() if k != "adjacency"}
    t = ngcf["train"]
    assert (t["dim"], t["layers"], t["lr"], t["batch_size"], t["reg"], t["epochs"]) == \
           (64, 3, 1e-4, 1024, 1e-5, 400)
    assert t["node_dropout"] == t["message_dropout"] == 0.1
    t = load_config(folder / "lightgcn.json")["train"]
    assert (t["dim"], t["layers"], t["lr"], t["batch_size"], t["reg"], t["epochs"]) == \
           (64, 3, 1e-3, 2048, 1e-4, 1000)


BASE = {"model": "lightgcn", "dataset": "gowalla", "paper": PAPER, "train": {"epochs": 2}}


@pytest.mark.parametrize("change, message", [
    ({"model": "bert4rec"}, "model must be one of"),
    ({"colour": "red"}, "unknown key"),
    ({"paper": {"recall@20": 1.5}}, r"paper.recall@20 must be a number in \[0, 1\]"),
    ({"paper": {"recall": 0.1}}, "paper: unknown key"),
    ({"train": {"epochs": 2, "patience": 3}}, "no early stopping"),
    ({"train": {"epochs": 2, "split": "random"}}, "split='given'"),
    ({"train": {"epochs": 2, "device": "cuda"}}, "--device"),
    ({"train": {"epochs": 2, "learning_rate": 0.1}}, "unknown key 'learning_rate'"),
    ({"train": {"epochs": 2, "lr": -1}}, "lr must be > 0"),
    ({"train": {"epochs": 2, "adjacency": "dense"}}, "adjacency must be"),
    ({"train": {"lr": 0.1}}, "train.epochs is required"),
    ({"train": None}, "needs a 'train' object"),
    ({"itemknn": {"k": 3}}, "only goes with model 'itemknn'"),
    ({"gfcf": {"k": 3}}, "only goes with model 'gfcf'"),
    ({"target": {"max_seconds": -1}}, "target.max_seconds must be a positive number"),
    ({"name": "a/b"}, "name must be"),
])
def test_config_validation_errors(change, message):
    config = {**BASE, **change}
    with pytest.raises(ConfigError, match=message):
        validate_config(config, "cfg.json")


def test_itemknn_config_validation():
    ok = {"model": "itemknn", "dataset": "gowalla", "paper": PAPER, "itemknn": {"k": 10, "shrink": 0}}
    validate_config(ok)
    with pytest.raises(ConfigError, match="no 'train' section"):
        validate_config({**ok, "train": {"epochs": 1}})
    with pytest.raises(ConfigError, match=r"itemknn.k must be an int >= 1"):
        validate_config({**ok, "itemknn": {"k": 0}})
    with pytest.raises(ConfigError, match=r"itemknn.k must be an int >= 1"):
        validate_config({**ok, "itemknn": {"k": 2.5}})
    with pytest.raises(ConfigError, match="unknown key 'neighbours'"):
        validate_config({**ok, "itemknn": {"neighbours": 5}})


def test_file_errors(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json: not valid JSON"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.json")
    with pytest.raises(FileNotFoundError, match="no folder with train.txt"):
        resolve_dataset("tiny", str(tmp_path))
    cfg = write_config(tmp_path / "ok.json")
    with pytest.raises(SystemExit) as exc:
        main([str(cfg), "--data-root", str(tmp_path / "nowhere"), "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "no folder with train.txt" in capsys.readouterr().err


def test_probe_times_batches_without_training_a_full_epoch(tmp_path, data):
    cfg = write_config(tmp_path / "lgn.json")
    summary = run(cfg, device="cpu", data_root=str(data), out=tmp_path / "out", probe_batches=3,
                  log=lambda *_: None)
    assert summary["probe"] and summary["probe_batches"] == 3 and len(summary["batch_seconds"]) == 3
    assert summary["batches_per_epoch"] == 7  # ceil(104 training pairs / 16)
    assert summary["sec_per_epoch"] == pytest.approx(7 * summary["median_batch_seconds"])
    assert summary["recall@20"] is None and "timing probe" in summary["partial"]
    assert (tmp_path / "out" / "lgn-cpu-probe.json").exists()
    assert not (tmp_path / "out" / "lgn-cpu-probe-curve.json").exists()
    with pytest.raises(ConfigError, match="no --epochs"):
        run(cfg, epochs=1, probe_batches=2, data_root=str(data), out=tmp_path, log=lambda *_: None)


def _script(name):
    """A module of scripts/ (not a package), loaded from its file."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plain_scipy_gfcf_agrees_with_the_library(tmp_path):
    """The baseline transcription and gnn's GF-CF are written independently: same metrics."""
    from gnn.data import load_dataset
    from gnn.models.graph_filters import GFCF
    folder = write_text_split(tmp_path / "tiny", n_users=70, n_items=45, seed=3)
    out = tmp_path / "plain.json"
    _script("gfcf_plain_scipy").main(["--data", str(folder), "--k", "6", "--alpha", "0.4",
                                      "--block", "16", "--json", str(out)])
    plain = json.loads(out.read_text())
    ds = load_dataset(str(folder), split="given")
    ours = GFCF(alpha=0.4, k=6, svd="scipy", dtype="float64").fit(ds.train_csr).evaluate(ds.test_csr)
    assert plain["n_users_evaluated"] == ours["n_users_evaluated"] == 70
    assert plain["recall@20"] == pytest.approx(ours["recall@20"], abs=1e-12)
    assert plain["ndcg@20"] == pytest.approx(ours["ndcg@20"], abs=1e-12)
