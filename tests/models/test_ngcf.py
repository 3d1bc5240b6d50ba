"""gnn.models.ngcf: NGCF against a float64 scipy re-implementation, self-loops never counted
twice (issue 8, defect 3), its arguments, dropout and the message-dropout mask."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gnn import NGCF, TrainConfig, UserItemCSR, build_adjacency
from gnn.models.ngcf import message_dropout_mask
from gnn.training.config import build_adjacency_for
from model_graphs import N_ITEMS, N_USERS, final_embeddings, ngcf_reference, small_graph, small_pairs


def randomize_bias(model):
    with torch.no_grad():
        for b in model.bias:
            b.normal_()  # exercise the bias too (it starts at zero)


@pytest.mark.parametrize("norm", ["sym", "row"])
def test_matches_float64_layers_paper_form(norm):
    # No self-loops in the adjacency: the layer adds the paper's + I to the W1 term.
    _, _, adj = small_graph(1, norm=norm)
    model = NGCF(adj, embedding_dim=6, layer_sizes=[5, 3], num_layers=2)
    assert model.self_loop is True
    randomize_bias(model)
    users, items = model.embeddings()
    assert users.shape == (N_USERS, model.output_dim) == (N_USERS, 6 + 5 + 3)
    assert items.shape == (N_ITEMS, 14)
    expected = ngcf_reference(model, adj.to_scipy(), self_loop=True)
    np.testing.assert_allclose(final_embeddings(model), expected, rtol=1e-4, atol=1e-5)


def test_matches_float64_layers_official_row_form():
    # The official code's D^-1 (A + I): the identity is in the matrix, in both terms.
    _, _, adj = small_graph(2, norm="row", self_loops=True)
    model = NGCF(adj, embedding_dim=5, num_layers=3)
    assert model.self_loop is False
    randomize_bias(model)
    expected = ngcf_reference(model, adj.to_scipy(), self_loop=False)
    np.testing.assert_allclose(final_embeddings(model), expected, rtol=1e-4, atol=1e-5)


def test_adjacency_with_self_loops_counts_the_identity_once():
    # Issue 8, defect 3: build_adjacency(..., self_loops=True) then NGCF(adj) added I a second time.
    user, item = small_pairs(3)
    adj = build_adjacency(user, item, N_USERS, N_ITEMS, norm="sym", self_loops=True)
    model = NGCF(adj, embedding_dim=4, num_layers=2)
    assert model.self_loop is False and model.init_args["self_loop"] is False
    randomize_bias(model)
    a_hat = build_adjacency(user, item, N_USERS, N_ITEMS, norm="sym").to_scipy()
    once = ngcf_reference(model, a_hat + sp.identity(a_hat.shape[0]), self_loop=False)
    twice = ngcf_reference(model, a_hat + sp.identity(a_hat.shape[0]), self_loop=True)
    assert not np.allclose(once, twice, rtol=1e-3, atol=1e-4)  # the two readings differ here
    np.testing.assert_allclose(final_embeddings(model), once, rtol=1e-4, atol=1e-5)


def test_self_loop_true_on_an_adjacency_with_self_loops_raises():
    _, _, adj = small_graph(4, self_loops=True)
    with pytest.raises(ValueError, match="self_loop"):
        NGCF(adj, self_loop=True)


def test_self_loop_false_is_honoured_on_a_plain_adjacency():
    _, _, adj = small_graph(5)
    model = NGCF(adj, embedding_dim=4, num_layers=1, self_loop=False)
    randomize_bias(model)
    expected = ngcf_reference(model, adj.to_scipy(), self_loop=False)
    np.testing.assert_allclose(final_embeddings(model), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("adjacency,loops", [("row", True), ("sym", False)])
def test_training_config_gives_ngcf_its_identity_exactly_once(adjacency, loops):
    config = TrainConfig(model="ngcf", adjacency=adjacency)
    assert NGCF.adjacency_options(config) == {"norm": adjacency, "self_loops": loops}
    user, item = small_pairs(6)
    adj = build_adjacency_for(config, UserItemCSR.from_pairs(user, item, N_USERS, N_ITEMS))
    assert adj.self_loops is loops
    assert NGCF(adj).self_loop is (not loops)


def test_num_layers_and_layer_sizes():
    _, _, adj = small_graph()
    model = NGCF(adj, embedding_dim=8, num_layers=2)
    assert model.layer_sizes == [8, 8] and model.output_dim == 24
    assert [tuple(w.shape) for w in model.w1] == [(8, 8), (8, 8)]
    sized = NGCF(adj, embedding_dim=8, num_layers=3, layer_sizes=[7, 5, 3])
    assert [tuple(w.shape) for w in sized.w2] == [(8, 7), (7, 5), (5, 3)]
    assert NGCF(adj, embedding_dim=4, num_layers=0).embeddings()[0].shape == (N_USERS, 4)


@pytest.mark.parametrize("kwargs,match", [
    (dict(num_layers=2, layer_sizes=[4]), "layer_sizes"),
    (dict(num_layers=-1), "num_layers"),
    (dict(num_layers=1, layer_sizes=[0]), "layer sizes"),
    (dict(message_dropout=1.0), "message_dropout"),
    (dict(node_dropout=-0.1), "node_dropout"),
    (dict(num_layers=0, embedding_dim=0), "embedding_dim"),
])
def test_bad_arguments_name_themselves(kwargs, match):
    _, _, adj = small_graph()
    with pytest.raises(ValueError, match=match):
        NGCF(adj, **kwargs)


def test_zero_embedding_dim_names_the_argument():
    _, _, adj = small_graph()
    with pytest.raises(ValueError, match="embedding_dim"):
        NGCF(adj, embedding_dim=0)


def test_training_mode_uses_dropout_and_eval_does_not():
    _, _, adj = small_graph(2)
    model = NGCF(adj, embedding_dim=8, num_layers=2, message_dropout=0.5, node_dropout=0.3)
    assert model.training  # nn.Module starts in training mode; embeddings() evaluates anyway
    a1, _ = model.embeddings()
    torch.testing.assert_close(model.embeddings()[0], a1, rtol=0, atol=0)
    model.eval()
    torch.testing.assert_close(model()[0], a1, rtol=0, atol=0)
    model.train()
    t1, _ = model()
    t2, _ = model()
    assert not torch.allclose(t1, t2)
    torch.manual_seed(9)
    r1, _ = model()
    torch.manual_seed(9)
    r2, _ = model()
    torch.testing.assert_close(r1, r2, rtol=0, atol=0)  # same seed, same masks


def test_message_dropout_mask_rate_scale_and_reproducibility():
    x = torch.ones(300, 333)  # odd size: the 16-bit draws do not divide it
    torch.manual_seed(0)
    m = message_dropout_mask(x, 0.1)
    assert m.shape == x.shape and m.dtype == x.dtype
    kept = m != 0
    p_keep = 1 - round(0.1 * 65536) / 65536
    assert abs(kept.float().mean().item() - p_keep) < 4 * (p_keep * (1 - p_keep) / x.numel()) ** 0.5
    torch.testing.assert_close(m[kept], torch.full_like(m[kept], 1 / p_keep))
    torch.manual_seed(0)
    assert torch.equal(message_dropout_mask(x, 0.1), m)
    assert not torch.equal(message_dropout_mask(x, 0.1), m)
    assert (message_dropout_mask(x, 0.0) == 1).all()
