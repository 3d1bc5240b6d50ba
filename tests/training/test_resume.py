"""Resume and checkpoints in the library (issue 17, problem 5): what may change on resume, what a
checkpoint must match (config, data, weights), and a new run that would replace another run's
checkpoint."""
import pytest
import torch

from gnn import TrainConfig, Trainer, save_model
from gnn.checkpoint import load_checkpoint
from tiny_datasets import tiny_split


def quiet(config, dataset=None):
    return Trainer(config, dataset=dataset or tiny_split(), log=lambda *a: None)


def config(**kw):
    base = dict(model="lightgcn", dataset="tiny", epochs=2, batch_size=32, lr=0.05, dim=8,
                layers=2, device="cpu", progress=False, patience=5)
    base.update(kw)
    return TrainConfig(**base)


def test_evaluation_settings_may_change_on_resume(tmp_path):
    # Issue 17, problem 5: --k, --patience and --eval-every could not change on resume.
    ckpt = tmp_path / "run.pt"
    quiet(config(checkpoint=str(ckpt))).fit()
    resumed = quiet(config(epochs=4, checkpoint=str(ckpt), resume=True, ks=(5, 20),
                           patience=9, eval_every=2, threads=1, overwrite=True))
    summary = resumed.fit()
    assert summary["epochs"] == 4 and summary["recall@5"] is not None
    assert [h["epoch"] for h in summary["history"] if "valid_recall@20" in h] == [1, 2, 4]
    with pytest.raises(ValueError, match=r"lr=0.05, this run has lr=0.01 \(a resumed run may "
                                         r"change only epochs, eval_every, patience, ks"):
        quiet(config(epochs=4, lr=0.01, checkpoint=str(ckpt), resume=True)).resume()


def test_resume_errors_name_the_file_before_training(tmp_path):
    missing = tmp_path / "missing.pt"
    with pytest.raises(FileNotFoundError, match="checkpoint not found: .*missing.pt"):
        quiet(config(checkpoint=str(missing), resume=True)).resume()
    ckpt = tmp_path / "run.pt"
    quiet(config(checkpoint=str(ckpt))).fit()
    # The same config on other interactions (a changed file, another seed of the split).
    with pytest.raises(ValueError, match="run.pt: cannot resume: the checkpoint was trained on "
                                         "other interactions"):
        quiet(config(checkpoint=str(ckpt), resume=True), tiny_split(seed=9)).resume()
    model_file = tmp_path / "model.pt"
    save_model(quiet(config()).model, model_file)
    with pytest.raises(ValueError, match="a saved model, not a training checkpoint"):
        quiet(config(checkpoint=str(model_file), resume=True)).resume()


def test_weights_that_do_not_fit_are_a_value_error(tmp_path):
    ckpt = tmp_path / "run.pt"
    quiet(config(checkpoint=str(ckpt))).fit()
    trainer = quiet(config(checkpoint=str(ckpt), resume=True))
    trainer.model.user_embedding = torch.nn.Embedding(30, 4)  # a model changed under the config
    with pytest.raises(ValueError, match="cannot resume: its weights do not fit this run's model "
                                         r"\(.*size mismatch"):
        trainer.resume()


def test_a_new_run_does_not_replace_another_runs_checkpoint(tmp_path):
    # Issue 17, problem 5: --checkpoint without --resume silently replaced another run's
    # checkpoint, even another model's.
    ckpt = tmp_path / "run.pt"
    quiet(config(model="mf", layers=None, checkpoint=str(ckpt))).fit()
    with pytest.raises(ValueError, match=r"run.pt holds the checkpoint of a 'mf' run after epoch "
                                         r"2: continue it with --resume .* --overwrite"):
        quiet(config(checkpoint=str(ckpt)))
    assert load_checkpoint(ckpt)["config"]["model"] == "mf"  # untouched
    quiet(config(epochs=1, checkpoint=str(ckpt), overwrite=True)).fit()
    assert load_checkpoint(ckpt)["config"]["model"] == "lightgcn"
    # What is not a gnn checkpoint is never replaced, not even with overwrite.
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(ValueError, match="notes.txt exists and is not a gnn checkpoint"):
        quiet(config(checkpoint=str(notes), overwrite=True))
    with pytest.raises(ValueError, match="is not a gnn checkpoint"):
        quiet(config(checkpoint=str(tmp_path), overwrite=True))
    assert notes.read_text() == "mine"


def test_resume_at_or_past_its_epochs_says_so(tmp_path):
    ckpt = tmp_path / "run.pt"
    quiet(config(checkpoint=str(ckpt))).fit()
    lines = []
    trainer = Trainer(config(checkpoint=str(ckpt), resume=True), dataset=tiny_split(),
                      log=lines.append)
    summary = trainer.fit()
    assert "no epoch to train: the run is at epoch 2, epochs=2" in lines
    assert summary["best_epoch"] is not None and summary["epochs"] == 2
