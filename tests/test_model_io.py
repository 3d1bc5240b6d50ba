"""gnn.save_model / gnn.load_model: round trips, what a file holds, checkpoints, errors."""
import pytest
import torch

from gnn import MF, NGCF, LightGCN, TrainConfig, Trainer, build_adjacency, load_model, save_model
from tiny_datasets import tiny_split


def models(ds):
    return [NGCF(build_adjacency(ds.train_csr), embedding_dim=6, num_layers=2, node_dropout=0.1),
            NGCF(build_adjacency(ds.train_csr, norm="row", self_loops=True), embedding_dim=5,
                 layer_sizes=[4, 7], num_layers=2),
            LightGCN(build_adjacency(ds.train_csr), embedding_dim=6, num_layers=2, alpha=[0.5, 0.3, 0.2]),
            MF(build_adjacency(ds.train_csr), embedding_dim=6)]


@pytest.mark.parametrize("index", range(4))
def test_round_trip_gives_the_same_model(tmp_path, index):
    ds = tiny_split(titles=True)
    torch.manual_seed(index)
    model = models(ds)[index]
    save_model(model, tmp_path / "m.pt", dataset=ds)
    loaded = load_model(tmp_path / "m.pt")
    assert type(loaded) is type(model) and loaded.init_args == model.init_args
    assert not loaded.training
    for a, b in zip(model.embeddings(), loaded.embeddings()):
        assert torch.equal(a, b)
    assert torch.equal(model.recommend(range(ds.n_users), 5), loaded.recommend(range(ds.n_users), 5))
    assert loaded.adj.norm == model.adj.norm and loaded.adj.self_loops == model.adj.self_loops
    assert loaded.catalog.seen == ds.seen_csr and loaded.catalog.item_titles[3] == "title 3"
    assert loaded.catalog.user_index_of("101") == 1
    with pytest.raises(ValueError, match="unknown user"):
        loaded.catalog.user_index_of(99)


def test_file_is_plain_data_for_weights_only(tmp_path):
    ds = tiny_split()
    save_model(models(ds)[0], tmp_path / "m.pt", dataset=ds)
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    assert state["format"] == "gnn-model-v1" and state["class"] == "ngcf"
    assert set(state) >= {"init_args", "state_dict", "adjacency", "train", "catalog"}


def test_without_a_dataset_there_is_no_catalog(tmp_path):
    ds = tiny_split()
    save_model(models(ds)[3], tmp_path / "m.pt")
    assert load_model(tmp_path / "m.pt").catalog is None


def test_a_checkpoint_loads_with_the_best_weights(tmp_path):
    ckpt = tmp_path / "run.pt"
    cfg = TrainConfig(model="mf", dataset="tiny", epochs=4, batch_size=32, lr=0.1, dim=6,
                      device="cpu", progress=False, checkpoint=str(ckpt))
    trainer = Trainer(cfg, dataset=tiny_split(), log=lambda *a: None)
    trainer.fit()  # leaves the best weights in trainer.model
    loaded = load_model(ckpt)
    for a, b in zip(trainer.model.embeddings(), loaded.embeddings()):
        assert torch.equal(a, b)


def test_errors_name_the_problem(tmp_path):
    ds = tiny_split()
    model = models(ds)[0]
    custom = NGCF(model.adj.with_values(model.adj.val * 2), embedding_dim=4, num_layers=1)
    with pytest.raises(ValueError, match="norm='custom'"):
        save_model(custom, tmp_path / "c.pt")
    with pytest.raises(ValueError, match="users"):
        save_model(model, tmp_path / "m.pt", dataset=tiny_split(n_users=31))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        load_model(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.pt")
