"""gnn.models.base: what every graph model shares — the BPR loss, score, recommend, the inference
cache, and a clear error for each kind of bad input (issue 8, "Bad input at the API level")."""
import io

import numpy as np
import pytest
import torch

from gnn import MF, NGCF, LightGCN, UserItemCSR, build_adjacency, bpr_loss
from model_graphs import N_ITEMS, N_USERS, small_graph, tiny_dataset

MODELS = [MF, LightGCN, NGCF]


def make(cls, seed=0, dim=4, weight_seed=None, **adj_options):
    """(user, item, model) on the graph ``small_graph(seed)``, weights drawn from ``weight_seed``."""
    user, item, adj = small_graph(seed, **adj_options)
    torch.manual_seed(seed if weight_seed is None else weight_seed)
    return user, item, cls(adj, embedding_dim=dim)


def brute_force_top(scores, excluded, k):
    """Items by (score desc, id asc) without the excluded ones, -1 past the end."""
    ranked = [i for i in sorted(range(len(scores)), key=lambda i: (-scores[i], i)) if i not in excluded]
    return (ranked + [-1] * k)[:k]


# -- the loss --------------------------------------------------------------------------------------
@pytest.mark.parametrize("reg_on", ["initial", "final"])
@pytest.mark.parametrize("cls", MODELS)
def test_loss_is_bpr_on_the_embeddings_and_differentiable(cls, reg_on):
    _, _, model = make(cls, 1)
    model.eval()  # no dropout: the two paths see the same numbers
    u, i, j = torch.tensor([0, 5, 5, 11]), torch.tensor([1, 2, 16, 0]), torch.tensor([3, 0, 7, 16])
    loss = model.loss(u, i, j, reg=0.3, reg_on=reg_on)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    users, items = model()
    if reg_on == "initial":
        reg_rows = (model.user_embedding.weight[u], model.item_embedding.weight[i],
                    model.item_embedding.weight[j])
    else:
        reg_rows = (users[u], items[i], items[j])
    want = bpr_loss(users[u], items[i], items[j], *reg_rows, 0.3)[0]
    want.backward()
    torch.testing.assert_close(loss, want)
    for name, p in model.named_parameters():
        assert p.grad.abs().sum() > 0 or name.startswith("bias"), name
        torch.testing.assert_close(grads[name], p.grad, msg=name)


def test_loss_default_reg_is_1e_4():
    _, _, model = make(MF, 2)
    u, i, j = torch.tensor([1]), torch.tensor([2]), torch.tensor([3])
    with_default = model.loss(u, i, j)
    zero = model.loss(u, i, j, reg=0.0)
    l2 = (model.user_embedding.weight[1].square().sum() + model.item_embedding.weight[2].square().sum()
          + model.item_embedding.weight[3].square().sum()) / 2
    torch.testing.assert_close(with_default - zero, 1e-4 * l2)


@pytest.mark.parametrize("cls", MODELS)
def test_batch_embeddings_equal_rows_of_the_full_forward(cls):
    _, _, model = make(cls, 7, dim=6)
    model.eval()
    u, i, j = torch.tensor([0, 5, 5]), torch.tensor([1, 2, 16]), torch.tensor([3, 0, 7])
    bu, bi, bj = model.batch_embeddings(u, i, j)
    users, items = model()
    torch.testing.assert_close(bu, users[u])
    torch.testing.assert_close(bi, items[i])
    torch.testing.assert_close(bj, items[j])


# -- score and recommend ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls", MODELS)
def test_score_is_the_dot_product_of_final_embeddings(cls):
    _, _, model = make(cls, 5)
    u_emb, i_emb = model.embeddings()
    s = model.score(torch.tensor([1, 2, 12]), [3, 16, 0])
    want = torch.stack([u_emb[1] @ i_emb[3], u_emb[2] @ i_emb[16], u_emb[12] @ i_emb[0]])
    torch.testing.assert_close(s, want)


@pytest.mark.parametrize("cls", MODELS)
def test_recommend_excludes_training_items_by_default(cls):
    user, item, model = make(cls, 4, dim=5)
    users = [0, 3, 12, 3]
    top, scores = model.recommend(torch.tensor(users), k=6, return_scores=True)
    assert top.shape == scores.shape == (4, 6)
    u_emb, i_emb = model.embeddings()
    for row, row_scores, u in zip(top.tolist(), scores, users):
        s = (u_emb[u] @ i_emb.T).tolist()
        seen = set(item[user == u].tolist())
        assert row == brute_force_top(s, seen, 6)
        torch.testing.assert_close(row_scores, model.score([u] * 6, row))


def test_recommend_default_k_is_10():
    _, _, model = make(MF)
    assert model.recommend([0, 1]).shape == (2, 10)


def test_recommend_exclude_the_datasets_seen_items(tmp_path):
    ds = tiny_dataset(tmp_path)
    model = MF(build_adjacency(ds.train_csr), embedding_dim=3)
    everyone = torch.arange(ds.n_users)
    top = model.recommend(everyone, k=ds.n_items, exclude=ds.seen_csr)
    default = model.recommend(everyone, k=ds.n_items)
    u_emb, i_emb = model.embeddings()
    held_out = ds.valid_csr.union(ds.test_csr)
    recommends_held_out = False
    for u in range(ds.n_users):
        seen = set(ds.seen_csr.items_of(u).tolist())
        assert top[u].tolist() == brute_force_top((u_emb[u] @ i_emb.T).tolist(), seen, ds.n_items)
        assert (top[u] >= 0).sum() == ds.n_items - len(seen)
        recommends_held_out |= bool(set(default[u].tolist()) & set(held_out.items_of(u).tolist()))
    assert recommends_held_out  # the default (training items only) differs: the check has teeth


def test_recommend_exclude_false_ranks_every_item():
    user, item, model = make(LightGCN, 6)
    top = model.recommend([0, 2], k=N_ITEMS, exclude=False)
    u_emb, i_emb = model.embeddings()
    for row, u in zip(top.tolist(), [0, 2]):
        assert row == brute_force_top((u_emb[u] @ i_emb.T).tolist(), set(), N_ITEMS)
        assert set(item[user == u].tolist()) <= set(row)


def test_recommend_ties_go_to_the_lower_item_id():
    adj = build_adjacency(np.array([0, 1]), np.array([2, 5]), 2, 8)
    model = MF(adj, embedding_dim=2)
    with torch.no_grad():
        model.item_embedding.weight.copy_(torch.tensor([[1.0, 0.0]] * 8))
        model.item_embedding.weight[6] = torch.tensor([2.0, 0.0])  # one clear winner
        model.user_embedding.weight.fill_(1.0)
    assert model.recommend([0, 1], k=5).tolist() == [[6, 0, 1, 3, 4], [6, 0, 1, 2, 3]]


def test_recommend_pads_with_minus_one_when_k_exceeds_the_items_left():
    adj = build_adjacency(np.array([0, 0, 1]), np.array([0, 1, 2]), 2, 3)
    model = MF(adj, embedding_dim=3)
    top, scores = model.recommend([0, 1], k=5, return_scores=True)
    assert top[0].tolist() == [2, -1, -1, -1, -1]
    assert sorted(top[1, :2].tolist()) == [0, 1] and top[1, 2:].tolist() == [-1, -1, -1]
    assert torch.isinf(scores[0, 1:]).all() and torch.isfinite(scores[1, :2]).all()


# -- bad input: a clear error naming the argument, one test per case --------------------------------
def test_constructor_needs_an_adjacency():
    with pytest.raises(TypeError, match="Adjacency"):
        MF(np.zeros((3, 3)))


def test_loss_lengths_differ():
    _, _, model = make(MF)
    with pytest.raises(ValueError, match="users, pos_items and neg_items must have the same length"):
        model.loss([0, 1], [2, 3], [4])


def test_loss_negatives_shape_and_objective_are_checked():
    _, _, model = make(MF)
    with pytest.raises(ValueError, match="same length, but got 2, 2 and 3"):
        model.loss([0, 1], [2, 3], [[4, 5], [4, 5], [6, 7]])
    with pytest.raises(ValueError, match=r"neg_items must have shape \(B,\) .* or \(B, K\) "
                                         r"with K >= 1 .* but got \(2, 0\)"):
        model.loss([0, 1], [2, 3], torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"but got \(2, 1, 1\)"):
        model.loss([0, 1], [2, 3], np.zeros((2, 1, 1), dtype=np.int64))
    with pytest.raises(ValueError, match=rf"neg_items must be ids in .*got range \[1, {N_ITEMS}\]"):
        model.loss([0, 1], [2, 3], [[1, 2], [3, N_ITEMS]])  # checked whatever the shape  # checked whatever the shape
    with pytest.raises(TypeError, match="objective must be a gnn.loss.Objective"):
        model.loss([0], [1], [2], objective="ccl")
    # A list of lists and its tensor give the same loss; (B, 1) equals (B,).
    a = model.loss([0, 1], [2, 3], [[4], [5]])
    assert torch.equal(a, model.loss([0, 1], [2, 3], torch.tensor([4, 5])))


def test_loss_empty_batch():
    _, _, model = make(MF)
    with pytest.raises(ValueError, match="empty"):
        model.loss(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long),
                   torch.tensor([], dtype=torch.long))


def test_score_lengths_differ():
    _, _, model = make(MF)
    with pytest.raises(ValueError, match="users and items must have the same length"):
        model.score([0, 1, 2], [2, 3])


@pytest.mark.parametrize("bad", [N_USERS, 10**9])
def test_user_ids_out_of_range(bad):
    _, _, model = make(LightGCN)
    with pytest.raises(ValueError, match=rf"users must be ids in \[0, {N_USERS}\)"):
        model.loss([0, bad], [1, 1], [2, 2])


def test_item_ids_out_of_range():
    _, _, model = make(MF)
    with pytest.raises(ValueError, match=rf"items must be ids in \[0, {N_ITEMS}\)"):
        model.score([0], [N_ITEMS])


def test_negative_ids():
    _, _, model = make(MF)
    with pytest.raises(ValueError, match=r"neg_items must be ids in .*got range \[-1"):
        model.loss([0], [1], [-1])


@pytest.mark.parametrize("ids", [torch.tensor([1.0]), [1.5], np.array([2.0])])
def test_float_ids(ids):
    _, _, model = make(MF)
    with pytest.raises(TypeError, match="pos_items must hold integer ids"):
        model.loss([0], ids, [2])


def test_bool_ids():
    _, _, model = make(MF)
    with pytest.raises(TypeError, match="items must hold integer ids"):
        model.score([0], torch.tensor([True]))


@pytest.mark.parametrize("cls", MODELS)
def test_adjacency_sizes_disagree_with_the_model(cls):
    _, _, model = make(cls)
    _, _, other = small_graph(0, n_users=N_USERS + 1)
    with pytest.raises(ValueError, match=rf"adj has {N_USERS + 1} users .* built for {N_USERS} users"):
        model(other)
    with pytest.raises(ValueError, match="adj has"):
        model.batch_embeddings(torch.tensor([0]), torch.tensor([1]), torch.tensor([2]), adj=other)


def test_adjacency_not_an_adjacency():
    _, _, model = make(MF)
    with pytest.raises(TypeError, match="adj must be a gnn.Adjacency"):
        model(model.adj.to_scipy())


def test_ids_on_another_device():
    _, _, model = make(MF)
    with pytest.raises(ValueError, match="users is on meta, but the model is on cpu"):
        model.score(torch.tensor([0], device="meta"), torch.tensor([1]))


def test_adjacency_on_another_device():
    _, _, model = make(LightGCN)
    with pytest.raises(ValueError, match="adj is on meta, but the model's weights are on cpu"):
        model(model.adj.to("meta"))


@pytest.mark.parametrize("bad", [[N_USERS], [-1]])
def test_recommend_unknown_users(bad):
    _, _, model = make(MF)
    with pytest.raises(ValueError, match="users must be ids in"):
        model.recommend(bad)


@pytest.mark.parametrize("k", [0, -2, 2.0, True])
def test_recommend_k_below_one_or_not_an_int(k):
    _, _, model = make(MF)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        model.recommend([0], k=k)


def test_recommend_exclude_of_the_wrong_kind():
    _, _, model = make(MF)
    with pytest.raises(TypeError, match="exclude must be None, False or a gnn.data.UserItemCSR"):
        model.recommend([0], exclude=[1, 2])
    with pytest.raises(ValueError, match="exclude covers"):
        model.recommend([0], exclude=UserItemCSR.from_pairs([0], [1], N_USERS, N_ITEMS + 1))


def test_recommend_for_no_users():
    _, _, model = make(MF)
    assert model.recommend([], k=3).shape == (0, 3)


# -- weights ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", MODELS)
def test_state_dict_round_trip_holds_no_graph(cls):
    _, _, model = make(cls, 6)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    assert not any("adj" in k for k in model.state_dict())  # the graph is not a weight
    _, _, other = make(cls, 6, weight_seed=60)
    assert not torch.allclose(other.embeddings()[0], model.embeddings()[0])
    other.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    torch.testing.assert_close(other.embeddings()[0], model.embeddings()[0])
    text = repr(model)
    assert cls.__name__ in text and "embedding_dim=4" in text
