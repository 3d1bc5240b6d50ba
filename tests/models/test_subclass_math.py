"""A subclass that changes a built-in model's math trains what it evaluates (issue 19).

Each subclass below overrides one of the methods that define a model's math (``readout``,
``propagate``, ``layer_step``); its BPR loss, every parameter's gradient and its inference
embeddings must equal a dense float64 re-implementation of the subclass's own math (with the
masks the library drew replayed). Before the fix, the batch paths of LightGCN, NGCF and MF
trained the built-in math whatever the subclass defined. The built-in models keep their fast
batch paths, and those agree with the generic path (propagate, then readout) they stand for.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gnn.models.lightgcn as lightgcn_module
from gnn import MF, NGCF, LightGCN
from gnn.models.base import spmm
from model_graphs import N_ITEMS, N_USERS, small_graph
from reference_models import MaskRecorder, bpr_reference, dense


class LearnedLayerWeights(LightGCN):
    """``e* = Σ_k softmax(β)_k E^k`` with learned ``β``."""

    def __init__(self, adj, **kwargs):
        super().__init__(adj, **kwargs)
        self.beta = nn.Parameter(torch.linspace(-0.5, 0.7, self.num_layers + 1))

    def readout(self, layers, rows=None):
        weights = torch.softmax(self.beta, 0)
        return sum(w * (x if rows is None else x.index_select(0, rows))
                   for w, x in zip(weights, layers))


class ResidualPropagation(LightGCN):
    """``E^{k+1} = Â E^k + 0.2 E^0`` (an extra term, in ``propagate``)."""

    def propagate(self, adj):
        adj = self.training_adjacency(adj)
        e0 = self.node_embeddings()
        layers = [e0]
        for _ in range(self.num_layers):
            layers.append(spmm(adj, layers[-1]) + 0.2 * e0)
        return layers


class LazyLayer(LightGCN):
    """``E^{k+1} = (Â E^k + E^k) / 2`` (another propagation matrix, in ``layer_step``)."""

    def layer_step(self, k, s, x, rows=None, n_nodes=None):
        return 0.5 * (s + x)


class SummedNGCF(NGCF):
    """``e* = Σ_l E^l`` instead of the normalised concatenation."""

    def readout(self, layers, rows=None):
        return sum(x if rows is None else x.index_select(0, rows) for x in layers)


class ResidualNGCF(NGCF):
    """``E^{l+1} = NGCF's layer + E^l`` (in ``layer_step``; equal layer sizes)."""

    def layer_step(self, k, s, x, rows=None, n_nodes=None):
        return super().layer_step(k, s, x, rows, n_nodes) + x


class TanhMF(MF):
    """``e* = tanh(E^0)``."""

    def readout(self, layers, rows=None):
        return torch.tanh(super().readout(layers, rows))


def lightgcn_layers(e0, a, model, p):
    layers = [e0]
    for _ in range(model.num_layers):
        if isinstance(model, ResidualPropagation):
            layers.append(a @ layers[-1] + 0.2 * e0)
        elif isinstance(model, LazyLayer):
            layers.append(0.5 * (a @ layers[-1] + layers[-1]))
        else:
            layers.append(a @ layers[-1])
    return layers


def ngcf_layers(e0, a, model, p, masks):
    layers, x = [e0], e0
    for k in range(model.num_layers):
        s = a @ x
        z = (s + x if model.self_loop else s) @ p[f"w1.{k}"] + (s * x) @ p[f"w2.{k}"] + p[f"bias.{k}"]
        y = F.leaky_relu(z, model.negative_slope)
        if masks:
            y = y * masks[k].double()
        x = y + x if isinstance(model, ResidualNGCF) else y
        layers.append(x)
    return layers


def reference_final(model, p, a, masks):
    """The subclass's math in dense float64 with the leaves ``p``."""
    e0 = torch.cat([p["user_embedding.weight"], p["item_embedding.weight"]])
    if isinstance(model, LightGCN):
        layers = lightgcn_layers(e0, a, model, p)
        if isinstance(model, LearnedLayerWeights):
            return sum(w * x for w, x in zip(torch.softmax(p["beta"], 0), layers))
        return sum(w * x for w, x in zip(model.alpha, layers))
    if isinstance(model, NGCF):
        layers = ngcf_layers(e0, a, model, p, masks)
        if isinstance(model, SummedNGCF):
            return sum(layers)
        return torch.cat([layers[0]] + [F.normalize(x, dim=1) for x in layers[1:]], dim=1)
    return torch.tanh(e0)


def build(cls, adj, dropout):
    if issubclass(cls, NGCF):
        return cls(adj, embedding_dim=6, num_layers=2, message_dropout=dropout,
                   node_dropout=dropout)
    if issubclass(cls, LightGCN):
        return cls(adj, embedding_dim=5, num_layers=3, node_dropout=dropout)
    return cls(adj, embedding_dim=5)


SUBCLASSES = [LearnedLayerWeights, ResidualPropagation, LazyLayer, SummedNGCF, ResidualNGCF,
              TanhMF]
CASES = [(cls, d) for cls in SUBCLASSES for d in ((0.0, 0.3) if cls is not TanhMF else (0.0,))]


@pytest.mark.parametrize("cls,dropout", CASES, ids=[f"{c.__name__}-d{d}" for c, d in CASES])
@pytest.mark.parametrize("reg_on", ["initial", "final"])
def test_subclass_trains_and_evaluates_its_own_math(cls, dropout, reg_on, monkeypatch):
    _, _, adj = small_graph(7, norm="sym")
    torch.manual_seed(0)
    model = build(cls, adj, dropout).double().train()
    recorder = MaskRecorder(monkeypatch)
    params = {k: p.detach().clone().requires_grad_() for k, p in model.named_parameters()}
    g = torch.Generator().manual_seed(1)
    u = torch.randint(0, N_USERS, (19,), generator=g)
    i = torch.randint(0, N_ITEMS, (19,), generator=g)
    j = torch.randint(0, N_ITEMS, (19,), generator=g)

    torch.manual_seed(2)
    loss = model.loss(u, i, j, reg=0.1, reg_on=reg_on)
    loss.backward()
    a = dense(recorder.adjacencies[-1] if recorder.adjacencies else adj)
    final = reference_final(model, params, a, recorder.messages)
    e0_users, e0_items = params["user_embedding.weight"], params["item_embedding.weight"]
    if reg_on == "final":
        e0_users, e0_items = final[:N_USERS], final[N_USERS:]
    want = bpr_reference(final, e0_users, e0_items, N_USERS, u, i, j, 0.1)
    want.backward()
    torch.testing.assert_close(loss, want, rtol=1e-10, atol=1e-12)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, params[name].grad, rtol=1e-9, atol=1e-11,
                                   msg=f"gradient of {name}")

    users, items = model.embeddings()  # evaluation: eval mode, no dropout
    with torch.no_grad():
        expected = reference_final(model, params, dense(adj), [])
    torch.testing.assert_close(torch.cat([users, items]), expected, rtol=1e-10, atol=1e-12)


def count_batch_rows(monkeypatch):
    calls = []
    original = lightgcn_module._BatchRows.apply

    def counting(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(lightgcn_module._BatchRows, "apply", counting)
    return calls


def test_lightgcn_itself_keeps_its_fast_batch_path_and_subclasses_leave_it(monkeypatch):
    _, _, adj = small_graph(8)
    calls = count_batch_rows(monkeypatch)
    u, i, j = torch.tensor([0, 3]), torch.tensor([1, 2]), torch.tensor([4, 5])
    LightGCN(adj, embedding_dim=4, num_layers=2).loss(u, i, j)
    assert len(calls) == 1
    for cls in (LearnedLayerWeights, ResidualPropagation, LazyLayer):
        cls(adj, embedding_dim=4, num_layers=2).loss(u, i, j)
    assert len(calls) == 1
    for cls, own in ((NGCF, True), (SummedNGCF, False), (ResidualNGCF, False), (MF, True),
                     (TanhMF, False)):
        model = build(cls, adj, 0.0)
        fast = model._table_rows_fast if issubclass(cls, MF) else model._batch_rows_fast
        assert fast is own, cls


class SameLightGCN(LightGCN):
    def readout(self, layers, rows=None):  # LightGCN's own math, through the generic path
        return super().readout(layers, rows)


class SameNGCF(NGCF):
    def layer_step(self, k, s, x, rows=None, n_nodes=None):  # no fused layers, generic path
        return super().layer_step(k, s, x, rows, n_nodes)


@pytest.mark.parametrize("fast,generic", [(LightGCN, SameLightGCN), (NGCF, SameNGCF)])
@pytest.mark.parametrize("reg_on", ["initial", "final"])
def test_fast_batch_paths_equal_the_generic_path(fast, generic, reg_on):
    # The fast paths are the same math as propagate + readout, masks included (same seed,
    # same draws in the same order).
    _, _, adj = small_graph(9, norm="row")
    out = []
    for cls in (fast, generic):
        torch.manual_seed(0)
        model = build(cls, adj, 0.3).double().train()
        torch.manual_seed(1)
        loss = model.loss(torch.tensor([0, 4, 4, 11]), torch.tensor([1, 2, 16, 0]),
                          torch.tensor([3, 3, 7, 8]), reg=0.1, reg_on=reg_on)
        loss.backward()
        out.append((loss, {k: p.grad for k, p in model.named_parameters()}))
    (loss_a, grads_a), (loss_b, grads_b) = out
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-12, atol=1e-14)
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-10, atol=1e-13)
