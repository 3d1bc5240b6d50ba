"""gnn.models.mf: MF-BPR's embeddings are its tables, its gradient is BPR's, and the training config
gives it no self-loops (issue 8, defect 3)."""
import pytest
import torch

from gnn import MF, TrainConfig, UserItemCSR, bpr_loss
from gnn.training.config import build_adjacency_for
from model_graphs import N_ITEMS, N_USERS, small_graph, small_pairs


@pytest.mark.parametrize("norm", ["sym", "row"])
def test_embeddings_are_the_tables_whatever_the_graph(norm):
    _, _, adj = small_graph(norm=norm, self_loops=norm == "row")
    model = MF(adj, embedding_dim=5)
    users, items = model.embeddings()
    assert users.shape == (N_USERS, 5) and items.shape == (N_ITEMS, 5)
    torch.testing.assert_close(users, model.user_embedding.weight.detach(), rtol=0, atol=0)
    torch.testing.assert_close(items, model.item_embedding.weight.detach(), rtol=0, atol=0)
    # the returned tensors are copies: changing them does not touch the weights
    users.add_(1.0)
    assert not torch.equal(users, model.user_embedding.weight.detach())


def test_init_std():
    _, _, adj = small_graph(1)
    torch.manual_seed(0)
    weights = MF(adj, embedding_dim=64, init_std=0.3).item_embedding.weight
    assert abs(weights.std().item() - 0.3) < 0.03


def test_loss_gradient_is_the_bpr_gradient_in_closed_form():
    # d/d e_u of -log σ(e_u·e_i - e_u·e_j) = -σ(-(x_ui - x_uj)) (e_i - e_j), for one triple
    _, _, adj = small_graph(2)
    model = MF(adj, embedding_dim=3)
    u, i, j = torch.tensor([4]), torch.tensor([2]), torch.tensor([9])
    model.loss(u, i, j, reg=0.0).backward()
    eu = model.user_embedding.weight[4].detach()
    ei, ej = model.item_embedding.weight[2].detach(), model.item_embedding.weight[9].detach()
    coeff = -torch.sigmoid(-(eu @ ei - eu @ ej))
    torch.testing.assert_close(model.user_embedding.weight.grad[4], coeff * (ei - ej))
    torch.testing.assert_close(model.item_embedding.weight.grad[2], coeff * eu)
    torch.testing.assert_close(model.item_embedding.weight.grad[9], -coeff * eu)
    assert model.user_embedding.weight.grad[0].abs().sum() == 0
    loss, _, _ = bpr_loss(eu[None], ei[None], ej[None], eu[None], ei[None], ej[None], 0.0)
    assert model.loss(u, i, j, reg=0.0).item() == pytest.approx(loss.item(), rel=1e-6)


@pytest.mark.parametrize("adjacency", ["sym", "row"])
def test_training_config_adds_no_self_loops(adjacency):
    # Issue 8, defect 3: --adjacency row used to add I for MF.
    config = TrainConfig(model="mf", adjacency=adjacency)
    assert MF.adjacency_options(config) == {"norm": adjacency, "self_loops": False}
    user, item = small_pairs(3)
    adj = build_adjacency_for(config, UserItemCSR.from_pairs(user, item, N_USERS, N_ITEMS))
    assert not adj.self_loops and not adj.to_scipy().diagonal().any()


def test_bad_embedding_dim():
    _, _, adj = small_graph()
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="embedding_dim"):
            MF(adj, embedding_dim=bad)
