"""The inference cache of embeddings() / score() / recommend() never serves embeddings of
weights that have changed since (issue 17, problem 1: fused optimisers update parameters
without bumping their version counter, and a version-keyed cache served stale embeddings)."""
import inspect

import pytest
import torch

from gnn import MF, NGCF, LightGCN
from model_graphs import small_graph

MODELS = [MF, LightGCN, NGCF]


def make(cls, seed=0, weight_seed=None, dim=4):
    _, _, adj = small_graph(seed)
    torch.manual_seed(seed if weight_seed is None else weight_seed)
    return cls(adj, embedding_dim=dim)


def fresh(model):
    """Embeddings computed now, bypassing the cache."""
    with torch.no_grad():
        return model()


def assert_serves_fresh(model):
    for cached, now in zip(model.embeddings(), fresh(model)):
        torch.testing.assert_close(cached, now, rtol=0, atol=0)


def step(model, optimizer):
    model.loss(torch.tensor([0, 1, 5]), torch.tensor([2, 3, 1]), torch.tensor([4, 5, 0])).backward()
    if isinstance(optimizer, torch.optim.LBFGS):
        optimizer.step(lambda: model.loss(torch.tensor([0]), torch.tensor([2]), torch.tensor([4])))
    else:
        optimizer.step()


# Every optimiser of torch.optim that takes dense gradients, in each of its implementations
# (for-loop, foreach, fused) that this torch offers on the CPU.
OPTIMIZERS = [
    (name, impl)
    for name in ("SGD", "Adam", "AdamW", "Adagrad", "Adamax", "NAdam", "RAdam", "RMSprop",
                 "Rprop", "Adadelta", "ASGD", "LBFGS")
    for impl in ("for-loop", "foreach", "fused")
    if impl == "for-loop" or impl in inspect.signature(getattr(torch.optim, name)).parameters
]
assert sum(impl == "fused" for _, impl in OPTIMIZERS) >= 4  # SGD, Adam, AdamW, Adagrad


def build_optimizer(name, impl, params):
    kwargs = {"lr": 0.05}
    if name == "SGD":
        kwargs["momentum"] = 0.9
    if name != "LBFGS":
        kwargs.update({"for-loop": {"foreach": False}, "foreach": {"foreach": True},
                       "fused": {"fused": True}}[impl])
    return getattr(torch.optim, name)(params, **kwargs)


def test_fused_optimisers_do_not_bump_the_version_counter():
    # Why the cache compares values: if this starts failing, torch changed, not the cache.
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.ones(3)
    torch.optim.Adam([p], lr=0.1, fused=True).step()
    assert p._version == 0 and not torch.equal(p.detach(), torch.ones(3))


@pytest.mark.parametrize("name,impl", OPTIMIZERS)
@pytest.mark.parametrize("cls", MODELS)
def test_an_optimizer_step_is_seen_by_the_cache(cls, name, impl):
    model = make(cls, 8)
    optimizer = build_optimizer(name, impl, model.parameters())
    model.eval()  # left in eval mode throughout, as a custom loop may do
    before = [t.clone() for t in model.embeddings()]
    for _ in range(2):
        step(model, optimizer)
        after = model.embeddings()
        assert not torch.equal(after[0], before[0])
        assert_serves_fresh(model)
        before = [t.clone() for t in after]


@pytest.mark.parametrize("cls", MODELS)
def test_embeddings_are_cached_while_nothing_changes(cls, monkeypatch):
    model = make(cls, 3)
    model.eval()
    calls = []
    propagate = type(model).propagate
    monkeypatch.setattr(type(model), "propagate", lambda self, adj: calls.append(1) or propagate(self, adj))
    first = model.embeddings()
    second = model.embeddings()
    assert first[0] is second[0] and first[1] is second[1]
    model.score([0, 1], [2, 3])
    model.recommend([0, 1, 2], k=3)
    model.recommend([4], k=2)
    assert len(calls) == 1  # one full propagation served every call


def test_train_then_eval_recomputes_the_same_values():
    model = make(LightGCN, 3)
    model.eval()
    first = model.embeddings()[0]
    model.train()
    model.eval()
    again = model.embeddings()[0]
    assert again is not first
    torch.testing.assert_close(again, first, rtol=0, atol=0)


def test_train_mode_is_never_cached():
    model = make(NGCF, 4)  # message dropout: two train-mode calls differ
    model.train()
    model.embeddings()
    assert model._cache is None


@pytest.mark.parametrize("cls", MODELS)
def test_load_state_dict_is_seen(cls):
    model, other = make(cls, 9), make(cls, 9, weight_seed=10)  # same graph, other weights
    model.eval()
    other.eval()
    stale = model.embeddings()[1].clone()
    model.load_state_dict(other.state_dict())
    torch.testing.assert_close(model.embeddings()[1], other.embeddings()[1], rtol=0, atol=0)
    assert not torch.allclose(model.embeddings()[1], stale)


def test_reset_parameters_is_seen():
    model = make(NGCF, 11)
    model.eval()
    stale = model.embeddings()[0].clone()
    model.reset_parameters()
    assert_serves_fresh(model)
    assert not torch.allclose(model.embeddings()[0], stale)


@pytest.mark.parametrize("edit", ["data", "no_grad", "set_data"])
@pytest.mark.parametrize("cls", MODELS)
def test_writes_that_bypass_the_version_counter_are_seen(cls, edit):
    model = make(cls, 12)
    model.eval()
    model.embeddings()
    weight = model.item_embedding.weight
    if edit == "data":
        weight.data.mul_(-2.0)
    elif edit == "no_grad":
        with torch.no_grad():
            weight.data[3] += 1.0
    else:
        weight.data = weight.data * 0.5  # a new tensor behind the same parameter
    assert_serves_fresh(model)


def test_a_single_element_change_is_seen():
    model = make(NGCF, 13)
    model.eval()
    model.embeddings()
    with torch.no_grad():
        model.w1[0].data[1, 2] = torch.nextafter(model.w1[0][1, 2], torch.tensor(10.0))
    assert_serves_fresh(model)


@pytest.mark.parametrize("cls", MODELS)
def test_a_dtype_move_is_seen(cls):
    model = make(cls, 14)
    model.eval()
    model.embeddings()
    model.double()
    users, items = model.embeddings()
    assert users.dtype == items.dtype == torch.float64
    assert_serves_fresh(model)


def test_nan_weights_are_never_served_from_the_cache():
    model = make(MF, 15)
    model.eval()
    with torch.no_grad():
        model.user_embedding.weight[0, 0] = float("nan")
    model.embeddings()
    with torch.no_grad():
        model.user_embedding.weight[0, 0] = 1.0  # NaN != NaN: compared unequal, recomputed
    assert model.embeddings()[0][0, 0] == 1.0


def test_a_custom_loop_left_in_eval_mode_scores_every_epoch_afresh():
    # The reproduction of problem 1: the Trainer's optimiser (fused Adam), eval() never undone.
    model = make(LightGCN, 16)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05, fused=True)
    model.eval()
    seen = []
    for _ in range(3):
        step(model, optimizer)
        seen.append(model.score([0, 1, 2], [3, 4, 5]).clone())
        with torch.no_grad():
            users, items = model()
        torch.testing.assert_close(seen[-1], (users[[0, 1, 2]] * items[[3, 4, 5]]).sum(-1),
                                   rtol=0, atol=0)
    assert not torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])
