"""gnn.cli.train (``python -m gnn.train``) end to end: the JSON summary, checkpoints and an exact
resume after SIGKILL, --save-model, and one-line errors instead of tracebacks (issue 8, defect 5)."""
import json
import signal
import subprocess

import pytest
import torch

from cli_runs import run_module, start_module, synthetic_ratings
from gnn import load_model
from gnn.checkpoint import load_checkpoint
from gnn.cli.train import build_parser, config_from_args, main as train_main

REQUIRED_KEYS = {"model", "dataset", "protocol", "epochs", "best_epoch", "recall@20",
                 "precision@20", "ndcg@20", "hit@20", "sec_per_epoch", "device", "n_users",
                 "n_items", "n_train", "n_valid", "n_test", "config", "history"}


@pytest.mark.slow
def test_two_epoch_ngcf_on_movielens_writes_summary(tmp_path, dataset_file, data_root):
    dataset_file("ml-latest-small", "ratings.csv")
    out = tmp_path / "run.json"
    code = train_main(["--model", "ngcf", "--dataset", "ml-latest-small", "--data-root", str(data_root),
                       "--epochs", "2", "--batch-size", "4096", "--json", str(out),
                       "--no-progress", "--device", "cpu"])
    assert code == 0
    summary = json.loads(out.read_text())
    assert REQUIRED_KEYS <= summary.keys()
    assert summary["model"] == "ngcf" and summary["dataset"] == "ml-latest-small"
    assert summary["protocol"] == "validation"
    assert summary["epochs"] == 2 and 1 <= summary["best_epoch"] <= 2
    assert summary["n_users"] == 610 and summary["n_items"] == 9724
    assert summary["n_train"] + summary["n_valid"] + summary["n_test"] == 100836
    for k in ("recall@20", "precision@20", "ndcg@20", "hit@20"):
        assert 0.0 < summary[k] <= 1.0, k
    assert summary["hit@20"] >= summary["recall@20"] > 0.01  # better than random already
    assert summary["sec_per_epoch"] > 0 and summary["device"] == "cpu"
    assert len(summary["history"]) == 2 and all("valid_recall@20" in h for h in summary["history"])


def wait_for_epoch(proc, checkpoint, epoch):
    """True once ``checkpoint`` records ``epoch`` or later; False if ``proc`` ends first."""
    while True:
        try:
            proc.wait(timeout=0.05)
            return False
        except subprocess.TimeoutExpired:
            pass
        if checkpoint.exists() and load_checkpoint(checkpoint)["epoch"] >= epoch:
            return True


@pytest.mark.slow
@pytest.mark.parametrize("model", ["ngcf", "lightgcn"])
def test_killed_run_resumes_to_the_same_metrics(tmp_path, model):
    data = synthetic_ratings(tmp_path / "ratings.csv", n_users=80, per_user=20)
    common = ["--model", model, "--dataset", str(data), "--epochs", "16", "--batch-size", "256",
              "--eval-every", "2", "--patience", "100", "--device", "cpu", "--no-progress",
              "--seed", "3"]
    straight = tmp_path / "straight.json"
    assert train_main(common + ["--json", str(straight)]) == 0

    ckpt = tmp_path / "ckpt.pt"
    proc = start_module("gnn.train", *common, "--checkpoint", ckpt)
    reached = wait_for_epoch(proc, ckpt, 4)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(ckpt)["epoch"]
    assert reached and proc.returncode == -signal.SIGKILL and 4 <= killed_at < 16, \
        "the run was not killed mid-way"

    resumed = tmp_path / "resumed.json"
    assert train_main(common + ["--checkpoint", str(ckpt), "--resume", "--json", str(resumed)]) == 0
    a, b = json.loads(straight.read_text()), json.loads(resumed.read_text())
    for key in ("epochs", "best_epoch", "recall@20", "precision@20", "ndcg@20", "hit@20"):
        assert a[key] == b[key], key
    assert [h.get("valid_recall@20") for h in a["history"]] == \
        [h.get("valid_recall@20") for h in b["history"]]
    # The reported loss is a float32 reduction whose summation order follows OpenMP's thread
    # count, which varies with machine load; it may differ in the last bit (the weights do not).
    assert [h["loss"] for h in a["history"]] == pytest.approx([h["loss"] for h in b["history"]], rel=1e-6)


def test_resume_refuses_a_different_run(tmp_path):
    data = synthetic_ratings(tmp_path / "ratings.csv", n_users=30, n_items=40)
    ckpt = tmp_path / "ckpt.pt"
    base = ["--dataset", str(data), "--epochs", "1", "--device", "cpu", "--no-progress",
            "--checkpoint", str(ckpt)]
    assert train_main(["--model", "mf"] + base) == 0
    assert train_main(["--model", "lightgcn", "--resume"] + base) == 2  # one line: see
    # tests/cli/test_train_resume.py


def test_checkpoint_is_plain_data(tmp_path):
    data = synthetic_ratings(tmp_path / "ratings.csv", n_users=30, n_items=40)
    ckpt = tmp_path / "ckpt.pt"
    assert train_main(["--model", "lightgcn", "--dataset", str(data), "--epochs", "2", "--device", "cpu",
                       "--no-progress", "--checkpoint", str(ckpt)]) == 0
    state = torch.load(ckpt, weights_only=True)  # loads under the safe unpickler
    assert state["epoch"] == 2
    assert not list(tmp_path.glob(".ckpt.pt.*"))  # no temporary file left behind


def test_save_model_writes_what_load_model_reads(tmp_path):
    data = synthetic_ratings(tmp_path / "ratings.csv", n_users=40, n_items=50)
    saved, ckpt = tmp_path / "model.pt", tmp_path / "ckpt.pt"
    assert train_main(["--model", "lightgcn", "--dataset", str(data), "--epochs", "3",
                       "--device", "cpu", "--no-progress", "--dim", "8", "--layers", "2",
                       "--save-model", str(saved), "--checkpoint", str(ckpt)]) == 0
    torch.load(saved, weights_only=True)
    model = load_model(saved)
    assert type(model).__name__ == "LightGCN" and not model.training
    assert model.embedding_dim == 8 and model.num_layers == 2
    catalog = model.catalog
    assert catalog is not None and catalog.name == "ratings"
    lines = data.read_text().splitlines()[1:]
    assert sorted(catalog.user_ids.tolist()) == sorted({int(l.split(",")[0]) for l in lines})
    assert sorted(catalog.item_ids.tolist()) == sorted({int(l.split(",")[1]) for l in lines})
    assert catalog.seen.nnz == len(lines)
    # The file holds the reported weights: the best validation epoch's, as the checkpoint says.
    best = load_checkpoint(ckpt)["best_model_state"]
    for name, value in model.state_dict().items():
        assert torch.equal(value, best[name]), name


def test_cli_rejects_bad_arguments(capsys):
    assert train_main(["--epochs", "-1"]) == 2
    assert "epochs must be >= 0" in one_line_error(capsys.readouterr().err)
    with pytest.raises(SystemExit):
        train_main(["--model", "gcn"])
    assert "invalid choice" in capsys.readouterr().err


def test_an_option_the_model_does_not_have_is_an_error(capsys):
    # Issue 17, problem 8: --message-dropout was silently ignored for LightGCN (and --layers
    # for MF).
    for argv, message in ((["--model", "lightgcn", "--message-dropout", "0.3"],
                           "message_dropout=0.3 does not apply to model 'lightgcn'"),
                          (["--model", "mf", "--layers", "2"],
                           "layers=2 does not apply to model 'mf'")):
        assert train_main(argv) == 2
        assert message in one_line_error(capsys.readouterr().err)


def test_every_flag_has_help_and_at_most_one_default():
    # Issue 17, problem 8: --lr, --batch-size, --seed, --model had no help; --data-root showed
    # two defaults.
    parser = build_parser()
    formatter = parser._get_formatter()
    for action in parser._actions:
        assert action.help, action.option_strings
        shown = formatter._get_help_string(action) % {"default": action.default}
        assert shown.count("default") <= 1, (action.option_strings, shown)


def test_flags_map_onto_the_config():
    args = build_parser().parse_args(["--model", "lightgcn", "--keep-freed-memory",
                                      "--node-dropout", "0.2"])
    config = config_from_args(args)
    assert config.keep_freed_memory and config.node_dropout == 0.2
    assert config.layers == 3 and config.message_dropout is None  # LightGCN's own defaults
    assert not config_from_args(build_parser().parse_args([])).keep_freed_memory


def test_module_help_runs():
    out = run_module("gnn.train", "--help", check=True).stdout
    for flag in ("--model", "--dataset", "--data-root", "--epochs", "--batch-size", "--lr", "--reg",
                 "--dim", "--layers", "--split", "--min-rating", "--seed", "--device", "--adjacency",
                 "--eval-every", "--patience", "--k", "--checkpoint", "--resume", "--json",
                 "--save-model", "--sampling", "--config", "--threads", "--overwrite",
                 "--skip-bad-lines", "--no-progress"):
        assert flag in out, flag


def one_line_error(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_bad_dataset_gives_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item\n1,2\n3,4,x\n")  # a third field ('3,x' is a text id now)
    assert train_main(["--dataset", str(bad), "--epochs", "1", "--no-progress"]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert str(bad) in line and "line 3" in line
    assert train_main(["--dataset", str(tmp_path / "missing.csv"), "--epochs", "1"]) == 2
    assert "neither a known dataset" in one_line_error(capsys.readouterr().err)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_device_cuda_without_cuda_exits_2_without_a_traceback(tmp_path):
    # Issue 8, defect 5: this printed a traceback.
    data = synthetic_ratings(tmp_path / "ratings.csv", n_users=10, n_items=20, per_user=5)
    result = run_module("gnn.train", "--dataset", data, "--device", "cuda", "--epochs", "1",
                        "--no-progress")
    assert result.returncode == 2
    line = one_line_error(result.stderr)
    assert "cuda" in line and "--device cpu" in line


def test_a_user_with_every_item_in_training_exits_2_with_a_clear_message(tmp_path, capsys):
    # Issue 8, defect 5: the sampler's ValueError surfaced as a traceback. A per-user split always
    # holds out one of a user's items, so the given split (train.txt / test.txt) is how a user
    # keeps every item in training.
    folder = tmp_path / "full"
    folder.mkdir()
    (folder / "train.txt").write_text("0 0 1 2 3\n1 0\n2 1 3\n")
    (folder / "test.txt").write_text("1 2\n2 0\n")
    assert train_main(["--dataset", str(folder), "--epochs", "1", "--no-progress",
                       "--device", "cpu"]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "every one of the 4 items" in line and "no negative item" in line


def test_a_delimited_file_where_every_user_has_every_item_exits_2(tmp_path, capsys):
    # One item, rated by everyone: every user has every item, and nothing can be held out.
    data = tmp_path / "one_item.csv"
    data.write_text("user,item\n1,10\n2,10\n3,10\n")
    assert train_main(["--dataset", str(data), "--epochs", "1", "--no-progress",
                       "--device", "cpu"]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "no user to evaluate" in line or "every one of the 1 items" in line
