"""gnn.models.lightgcn: LightGCN against a float64 scipy propagation, its layer weights ``alpha``,
node dropout, and no self-loops from the training config (issue 8, defect 3)."""
import numpy as np
import pytest
import torch

from gnn import LightGCN, TrainConfig, UserItemCSR
from gnn.training.config import build_adjacency_for
from model_graphs import N_ITEMS, N_USERS, final_embeddings, lightgcn_reference, small_graph, small_pairs


@pytest.mark.parametrize("norm", ["sym", "row"])
def test_matches_float64_propagation_with_the_mean_of_layers(norm):
    _, _, adj = small_graph(norm=norm)
    model = LightGCN(adj, embedding_dim=7, num_layers=3)
    assert model.alpha == [0.25] * 4
    expected = lightgcn_reference(model, adj.to_scipy(), [0.25] * 4)
    np.testing.assert_allclose(final_embeddings(model), expected, rtol=1e-5, atol=1e-6)


def test_alpha_one_number_weighs_every_layer_the_same():
    _, _, adj = small_graph(1)
    model = LightGCN(adj, embedding_dim=5, num_layers=2, alpha=1.0)
    assert model.alpha == [1.0, 1.0, 1.0]
    expected = lightgcn_reference(model, adj.to_scipy(), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(final_embeddings(model), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("alpha", [[0.5, 0.0, 2.0, -1.0], torch.tensor([0.5, 0.0, 2.0, -1.0])])
def test_alpha_one_weight_per_layer(alpha):
    _, _, adj = small_graph(2)
    model = LightGCN(adj, embedding_dim=4, num_layers=3, alpha=alpha)
    assert model.alpha == [0.5, 0.0, 2.0, -1.0]
    assert model.init_args["alpha"] == [0.5, 0.0, 2.0, -1.0]  # plain floats: saved with the model
    expected = lightgcn_reference(model, adj.to_scipy(), [0.5, 0.0, 2.0, -1.0])
    np.testing.assert_allclose(final_embeddings(model), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("alpha", [[1.0, 1.0], [1.0] * 5, [1.0, float("nan"), 1.0, 1.0], []])
def test_alpha_of_the_wrong_length_or_not_finite(alpha):
    _, _, adj = small_graph()
    with pytest.raises(ValueError, match="alpha"):
        LightGCN(adj, num_layers=3, alpha=alpha)


@pytest.mark.parametrize("kwargs,match", [
    (dict(num_layers=-1), "num_layers"),
    (dict(node_dropout=1.0), "node_dropout"),
    (dict(embedding_dim=0), "embedding_dim"),
])
def test_bad_arguments_name_themselves(kwargs, match):
    _, _, adj = small_graph()
    with pytest.raises(ValueError, match=match):
        LightGCN(adj, **kwargs)


def test_zero_layers_is_the_embedding_table():
    _, _, adj = small_graph(3)
    model = LightGCN(adj, embedding_dim=3, num_layers=0)
    users, items = model.embeddings()
    torch.testing.assert_close(users, model.user_embedding.weight.detach())
    torch.testing.assert_close(items, model.item_embedding.weight.detach())


def test_node_dropout_only_in_training_and_reproducible():
    _, _, adj = small_graph(4)
    model = LightGCN(adj, embedding_dim=4, num_layers=2, node_dropout=0.4)
    model.eval()
    e1, e2 = model()[0], model()[0]
    torch.testing.assert_close(e1, e2, rtol=0, atol=0)
    model.train()
    torch.manual_seed(5)
    t1 = model()[0]
    torch.manual_seed(5)
    t2 = model()[0]
    torch.testing.assert_close(t1, t2, rtol=0, atol=0)
    assert not torch.allclose(t1, model()[0])


@pytest.mark.parametrize("adjacency", ["sym", "row"])
def test_training_config_adds_no_self_loops(adjacency):
    # Issue 8, defect 3: --adjacency row used to add I for LightGCN.
    config = TrainConfig(model="lightgcn", adjacency=adjacency)
    assert LightGCN.adjacency_options(config) == {"norm": adjacency, "self_loops": False}
    user, item = small_pairs(6)
    adj = build_adjacency_for(config, UserItemCSR.from_pairs(user, item, N_USERS, N_ITEMS))
    assert not adj.self_loops
    assert not adj.to_scipy().diagonal().any()
