"""XSimGCL (gnn/models/xsimgcl.py) against a dense float64 re-implementation written from the math
of its module docstring, replaying the noise the model drew: the loss (BPR with one or K
negatives, CCL; both regularisers) and every gradient, through LightGCN's batch path and through
autograd over the layers; inference without noise; the noise itself; the options' errors."""
import numpy as np
import pytest
import torch

import gnn.models.xsimgcl as xsimgcl_module
from gnn import build_adjacency, load_model, save_model
from gnn.loss import make_objective
from gnn.models import XSimGCL
from reference_models import dense, objective_reference

N_USERS, N_ITEMS = 13, 17


def graph(seed=0):
    rng = np.random.default_rng(seed)
    user = rng.integers(0, N_USERS - 1, 70)                        # the last user is isolated
    item = np.minimum(rng.zipf(1.5, 70) - 1, N_ITEMS - 2)          # power law; last item isolated
    return build_adjacency(user, item, N_USERS, N_ITEMS)


class SlowXSimGCL(XSimGCL):
    """The same math with readout overridden: trained through autograd over the layers."""

    def readout(self, layers, rows=None):
        return super().readout(layers, rows)


@pytest.fixture
def noises(monkeypatch):
    drawn = []
    original = xsimgcl_module.orthant_noise

    def recording(s, length, rows=None):
        out = original(s, length, rows)
        drawn.append(out.detach().clone())
        return out

    monkeypatch.setattr(xsimgcl_module, "orthant_noise", recording)
    return drawn


def info_nce_reference(a, b, tau):
    """Row r's cross-entropy of exp(cos(a_r, b_r) / τ) among exp(cos(a_r, b_v) / τ), averaged."""
    na, nb = a.pow(2).sum(1).sqrt(), b.pow(2).sum(1).sqrt()
    cos = (a @ b.T) / (na[:, None] * nb[None, :])
    return (torch.log(torch.exp(cos / tau).sum(1)) - torch.diagonal(cos) / tau).mean()


def reference_loss(model, params, noises, u, i, j, reg, objective, reg_on):
    a = dense(model.adj)
    e0 = torch.cat([params["user_embedding.weight"], params["item_embedding.weight"]])
    layers = [e0]
    for k in range(model.num_layers):
        layers.append(a @ layers[-1] + (noises[k].double() if noises else 0.0))
    final = sum(layers[1:]) / model.num_layers
    e0u, e0i = ((e0[:N_USERS], e0[N_USERS:]) if reg_on == "initial"
                else (final[:N_USERS], final[N_USERS:]))
    name, _, options = objective
    loss = objective_reference(name, final, e0u, e0i, N_USERS, u, i, j, reg, **options)
    for ids in (torch.unique(u), torch.unique(i) + N_USERS):
        loss = loss + model.cl_weight * info_nce_reference(final[ids], layers[model.cl_layer][ids],
                                                           model.temperature)
    return loss


OBJECTIVES = [("bpr", 1, {}), ("bpr", 3, {}), ("ccl", 4, {"margin": 0.1, "negative_weight": 2.0})]


@pytest.mark.parametrize("cls", [XSimGCL, SlowXSimGCL], ids=["batch-path", "autograd"])
@pytest.mark.parametrize("objective", OBJECTIVES, ids=lambda o: f"{o[0]}-K{o[1]}")
@pytest.mark.parametrize("layers,cl_layer,reg_on", [(1, 1, "initial"), (2, 1, "final"),
                                                    (3, 2, "initial"), (3, 3, "final")])
def test_loss_and_gradients_match_dense_float64(cls, objective, layers, cl_layer, reg_on, noises):
    torch.manual_seed(1)
    model = cls(graph(), embedding_dim=7, num_layers=layers, noise=0.3, cl_weight=0.7,
                temperature=0.4, cl_layer=cl_layer).double().train()
    assert model._xsimgcl_fast == (cls is XSimGCL)
    g = torch.Generator().manual_seed(2)
    u = torch.randint(0, N_USERS, (23,), generator=g)
    i = torch.randint(0, N_ITEMS, (23,), generator=g)
    j = torch.randint(0, N_ITEMS, (23,) if objective[1] == 1 else (23, objective[1]), generator=g)
    params = {k: p.detach().clone().requires_grad_() for k, p in model.named_parameters()}
    torch.manual_seed(3)
    loss = model.loss(u, i, j, reg=0.1, reg_on=reg_on,
                      objective=make_objective(objective[0], **objective[2]))
    loss.backward()
    assert len(noises) == layers  # one draw per layer, each the whole layer
    ref = reference_loss(model, params, noises, u, i, j, 0.1, objective, reg_on)
    ref.backward()
    assert abs(loss.item() - ref.item()) <= 1e-10 * max(1.0, abs(ref.item()))
    for k, p in model.named_parameters():
        err = (p.grad - params[k].grad).abs().max().item()
        assert err <= 1e-10, f"gradient of {k}: {err}"


def test_both_paths_draw_the_same_noise_and_agree(noises):
    fast = XSimGCL(graph(1), embedding_dim=5, num_layers=2).double().train()
    slow = SlowXSimGCL(graph(1), embedding_dim=5, num_layers=2).double().train()
    slow.load_state_dict(fast.state_dict())
    u, i, j = torch.tensor([0, 3, 3, 7]), torch.tensor([1, 2, 5, 9]), torch.tensor([4, 4, 0, 2])
    torch.manual_seed(9)
    a = fast.loss(u, i, j)
    torch.manual_seed(9)
    b = slow.loss(u, i, j)
    assert torch.allclose(a, b, rtol=1e-12) and len(noises) == 4
    assert all(torch.equal(x, y) for x, y in zip(noises[:2], noises[2:]))


def test_inference_has_no_noise_and_averages_the_layers_after_the_input(noises):
    torch.manual_seed(0)
    model = XSimGCL(graph(2), embedding_dim=6, num_layers=3).double()
    users, items = model.embeddings()
    a = dense(model.adj)
    x = torch.cat([model.user_embedding.weight, model.item_embedding.weight]).detach()
    layers = [x]
    for _ in range(3):
        layers.append(a @ layers[-1])
    expected = sum(layers[1:]) / 3
    assert torch.allclose(torch.cat([users, items]), expected, rtol=1e-12, atol=1e-14)
    assert not noises


def test_the_noise_has_length_eps_and_the_orthant_of_its_layer():
    torch.manual_seed(0)
    s = torch.randn(300, 9, dtype=torch.float64)
    s[0] = 0.0     # an isolated node's row: +0 entries
    s[1, :4] = -0.0
    torch.manual_seed(4)
    delta = xsimgcl_module.orthant_noise(s, 0.25)
    assert torch.allclose(delta.norm(dim=1), torch.full((300,), 0.25, dtype=torch.float64))
    assert (torch.signbit(delta) == torch.signbit(s)).all()
    # The directions are spread over the orthant: |Δ| / ε is uniform on the sphere's positive
    # part; its mean entry is about E[x] / sqrt(E[x^2] d) = 0.5 / sqrt(9 / 3) = 0.289.
    assert abs((delta.abs() / 0.25).mean().item() - 0.289) < 0.01
    torch.manual_seed(4)
    rows = torch.tensor([5, 2, 299])
    assert torch.equal(xsimgcl_module.orthant_noise(s, 0.25, rows), delta[rows])


def test_saved_and_loaded_with_its_options(tmp_path):
    model = XSimGCL(graph(3), embedding_dim=4, num_layers=3, noise=0.1, cl_weight=0.05,
                    temperature=0.3, cl_layer=2)
    save_model(model, tmp_path / "x.pt")
    back = load_model(tmp_path / "x.pt")
    assert type(back) is XSimGCL and back.init_args == model.init_args
    assert torch.equal(torch.cat(back.embeddings()), torch.cat(model.embeddings()))


@pytest.mark.parametrize("kwargs,match", [
    (dict(num_layers=0), "num_layers must be an int >= 1"),
    (dict(noise=-0.1), "noise must be a finite number >= 0"),
    (dict(cl_weight=float("nan")), "cl_weight must be a finite number >= 0"),
    (dict(temperature=0), "temperature must be a finite number > 0"),
    (dict(temperature=True), "temperature must be a finite number"),
    (dict(num_layers=2, cl_layer=3), r"cl_layer must be an int in \[1, num_layers=2\]"),
    (dict(cl_layer=0), "cl_layer must be an int in"),
])
def test_bad_options_name_themselves(kwargs, match):
    with pytest.raises(ValueError, match=match):
        XSimGCL(graph(), **kwargs)
