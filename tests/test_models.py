"""The models against float64 re-implementations written with scipy, and their public API."""
import io

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gnn import MF, NGCF, LightGCN, build_adjacency


def small_graph(seed=0, n_users=13, n_items=17, n_pairs=60):
    rng = np.random.default_rng(seed)
    user = rng.integers(0, n_users - 1, n_pairs)  # the last user has no training items
    item = np.minimum(rng.zipf(1.6, n_pairs) - 1, n_items - 2)  # the last item is isolated
    return user, item, build_adjacency(user, item, n_users, n_items)


def leaky(x, slope=0.2):
    return np.where(x > 0, x, slope * x)


def rownorm(x):
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def test_lightgcn_matches_float64_propagation():
    _, _, adj = small_graph()
    model = LightGCN(adj, dim=7, num_layers=3)
    a = adj.to_scipy()
    e = torch.cat([model.user_embedding.weight, model.item_embedding.weight]).double().detach().numpy()
    layers = [e]
    for _ in range(3):
        layers.append(a @ layers[-1])
    expected = np.mean(layers, axis=0)
    users, items = model.embeddings()
    np.testing.assert_allclose(torch.cat([users, items]).numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("adjacency", ["sym", "row"])
def test_ngcf_matches_float64_layers(adjacency):
    user, item, _ = small_graph(1)
    adj = build_adjacency(user, item, 13, 17, norm=adjacency, self_loops=adjacency == "row")
    model = NGCF(adj, dim=6, layers=[5, 3], self_loop=adjacency == "sym")
    with torch.no_grad():
        for b in model.bias:
            b.normal_()  # exercise the bias too
    a = adj.to_scipy()
    x = torch.cat([model.user_embedding.weight, model.item_embedding.weight]).double().detach().numpy()
    outs = [x]
    for w1, w2, b in zip(model.w1, model.w2, model.bias):
        w1, w2, b = (t.double().detach().numpy() for t in (w1, w2, b))
        s = a @ x
        x = leaky((s + (x if adjacency == "sym" else 0)) @ w1 + (s * x) @ w2 + b)
        outs.append(rownorm(x))
    expected = np.concatenate(outs, axis=1)
    users, items = model.embeddings()
    assert users.shape == (13, model.output_dim) == (13, 6 + 5 + 3)
    np.testing.assert_allclose(torch.cat([users, items]).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_ngcf_training_mode_uses_dropout_and_eval_does_not():
    _, _, adj = small_graph(2)
    model = NGCF(adj, dim=8, layers=2, message_dropout=0.5, node_dropout=0.3)
    a1, _ = model.embeddings()
    a2, _ = model.embeddings()
    torch.testing.assert_close(a1, a2)
    model.train()
    t1, _ = model()
    t2, _ = model()
    assert not torch.allclose(t1, t2)


@pytest.mark.parametrize("cls", [MF, LightGCN, NGCF])
def test_gradients_reach_every_parameter(cls):
    _, _, adj = small_graph(3)
    model = cls(adj, dim=4)
    users, items = model()
    (users.square().sum() + items.sum()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("cls", [MF, LightGCN, NGCF])
def test_recommend_excludes_training_items_and_matches_brute_force(cls):
    user, item, adj = small_graph(4)
    model = cls(adj, dim=5)
    users = torch.tensor([0, 3, 12, 3])
    top = model.recommend(users, k=6)
    u_emb, i_emb = model.embeddings()
    seen = {u: set(item[user == u].tolist()) for u in range(13)}
    for row, u in zip(top.tolist(), users.tolist()):
        scores = (u_emb[u] @ i_emb.T).numpy()
        ranked = [i for i in np.argsort(-scores, kind="stable") if i not in seen[u]][:6]
        assert row == ranked
        assert not set(row) & seen[u]


def test_recommend_pads_when_k_exceeds_unseen_items():
    adj = build_adjacency(np.array([0, 0, 1]), np.array([0, 1, 2]), 2, 3)
    model = MF(adj, dim=3)
    top, scores = model.recommend([0], k=5, return_scores=True)
    assert top.tolist() == [[2, -1, -1, -1, -1]]
    assert torch.isinf(scores[0, 1:]).all()


def test_score_is_dot_product_of_final_embeddings():
    _, _, adj = small_graph(5)
    model = LightGCN(adj, dim=4)
    u_emb, i_emb = model.embeddings()
    s = model.score(torch.tensor([1, 2]), torch.tensor([3, 4]))
    torch.testing.assert_close(s, torch.stack([u_emb[1] @ i_emb[3], u_emb[2] @ i_emb[4]]))
    with pytest.raises(ValueError, match="items must be ids"):
        model.score(torch.tensor([1]), torch.tensor([17]))


@pytest.mark.parametrize("cls", [MF, LightGCN, NGCF])
def test_state_dict_roundtrip_and_reset(cls):
    _, _, adj = small_graph(6)
    model = cls(adj, dim=4)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    assert not any("adj" in k for k in model.state_dict())  # the graph is not a weight
    other = cls(adj, dim=4)
    other.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    torch.testing.assert_close(other.embeddings()[0], model.embeddings()[0])
    before = model.user_embedding.weight.detach().clone()
    model.reset_parameters()
    assert not torch.equal(before, model.user_embedding.weight)
    text = repr(model)
    assert cls.__name__ in text and "n_users=13" in text and "dim=4" in text


def test_bad_arguments():
    _, _, adj = small_graph()
    with pytest.raises(TypeError, match="Adjacency"):
        MF(sp.csr_matrix((3, 3)))
    with pytest.raises(ValueError, match="message_dropout"):
        NGCF(adj, message_dropout=1.0)
    with pytest.raises(ValueError, match="k must be"):
        MF(adj).recommend([0], k=0)


@pytest.mark.parametrize("cls", [MF, LightGCN, NGCF])
def test_batch_embeddings_equal_rows_of_the_full_forward(cls):
    _, _, adj = small_graph(7)
    model = cls(adj, dim=6)
    model.eval()  # no dropout: both paths must agree exactly
    u, i, j = torch.tensor([0, 5, 5]), torch.tensor([1, 2, 16]), torch.tensor([3, 0, 7])
    bu, bi, bj = model.batch_embeddings(u, i, j)
    users, items = model()
    torch.testing.assert_close(bu, users[u])
    torch.testing.assert_close(bi, items[i])
    torch.testing.assert_close(bj, items[j])
    # Gradients agree too.
    (bu.sum() + 2 * bi.sum() - bj.square().sum()).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    (users[u].sum() + 2 * items[i].sum() - items[j].square().sum()).backward()
    for g, p in zip(grads, model.parameters()):
        torch.testing.assert_close(g, p.grad)


def test_message_dropout_rate_scale_and_gradient():
    from gnn.models.ngcf import message_dropout

    torch.manual_seed(0)
    x = torch.ones(300, 333, requires_grad=True)  # odd size: the 16-bit draws do not divide it
    y = message_dropout(x, 0.1, training=True)
    kept = y != 0
    p_keep = 1 - round(0.1 * 65536) / 65536
    assert abs(kept.float().mean().item() - p_keep) < 4 * (p_keep * (1 - p_keep) / x.numel()) ** 0.5
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / p_keep))
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())  # d(x * m)/dx = m
    assert message_dropout(x, 0.1, training=False) is x
    assert message_dropout(x, 0.0, training=True) is x
