"""The gradient suite: every model option against float64 dense autograd under the same masks.

Each model (NGCF, LightGCN, MF) x adjacency {sym, row} x self-loops {off, on} x node dropout
{0, 0.3} x message dropout {0, 0.3} (where the model has the option), in train mode: the BPR
loss, the final embeddings and every parameter's gradient are compared with the dense float64
re-implementation of tests/models/reference_models.py, replaying the masks the library drew. Through
the torch backend here, and through the Triton kernels in the interpreter (a subprocess, since
triton picks interpreter or compiler when it is first imported) for one configuration per model.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gnn import MF, NGCF, LightGCN, build_adjacency
from gnn.loss import make_objective
from reference_models import (MaskRecorder, bpr_reference, dense, final_embeddings,
                              objective_reference)

IN_TRITON_SUBPROCESS = os.environ.get("GNN_TEST_TRITON_GRADIENTS") == "1"
N_USERS, N_ITEMS = 13, 17


def graph(norm, self_loops, seed=0):
    rng = np.random.default_rng(seed)
    user = rng.integers(0, N_USERS - 1, 70)                        # the last user is isolated
    item = np.minimum(rng.zipf(1.5, 70) - 1, N_ITEMS - 2)          # power law; last item isolated
    return build_adjacency(user, item, N_USERS, N_ITEMS, norm=norm, self_loops=self_loops)


def make_model(name, adj, node_dropout, message_dropout):
    if name == "ngcf":
        return NGCF(adj, embedding_dim=7, num_layers=2, layer_sizes=[5, 6],
                    message_dropout=message_dropout, node_dropout=node_dropout)
    if name == "lightgcn":
        return LightGCN(adj, embedding_dim=7, num_layers=3, node_dropout=node_dropout)
    return MF(adj, embedding_dim=7)


def cases():
    for name in ("ngcf", "lightgcn", "mf"):
        for norm in ("sym", "row"):
            for loops in (False, True):
                for nd in ((0.0, 0.3) if name != "mf" else (0.0,)):
                    for md in ((0.0, 0.3) if name == "ngcf" else (0.0,)):
                        yield pytest.param(name, norm, loops, nd, md,
                                           id=f"{name}-{norm}-loops{int(loops)}-nd{nd}-md{md}")


def close(actual, expected, tol, what):
    actual, expected = actual.detach().double().cpu(), expected.detach().double().cpu()
    scale = max(1.0, expected.abs().max().item())
    err = (actual - expected).abs().max().item()
    assert err <= tol * scale, f"{what}: max abs error {err:.3g} > {tol:.1g} x {scale:.3g}"


def check_against_reference(name, norm, loops, nd, md, monkeypatch, dtype, tol, objective=None,
                            reg_on="initial"):
    """``objective``: None for BPR with one negative per pair (the reference written apart,
    bpr_reference), or ``(loss name, K, options)`` for K negatives per pair."""
    adj = graph(norm, loops)
    torch.manual_seed(1)
    model = make_model(name, adj, nd, md).to(dtype).train()
    recorder = MaskRecorder(monkeypatch)
    g = torch.Generator().manual_seed(2)
    u = torch.randint(0, N_USERS, (23,), generator=g)
    i = torch.randint(0, N_ITEMS, (23,), generator=g)
    j = torch.randint(0, N_ITEMS, (23,) if objective is None else (23, objective[1]), generator=g)
    params = {k: p.detach().double().clone().requires_grad_() for k, p in model.named_parameters()}

    def reference_final():
        a = dense(recorder.adjacencies[-1] if recorder.adjacencies else adj)
        return final_embeddings(model, params, a, recorder.messages)

    torch.manual_seed(3)
    if objective is None:
        loss = model.loss(u, i, j, reg=0.1)
    else:
        loss = model.loss(u, i, j, reg=0.1, reg_on=reg_on,
                          objective=make_objective(objective[0], **objective[2]))
    loss.backward()
    assert len(recorder.adjacencies) == (1 if nd else 0)
    if objective is None:
        ref = bpr_reference(reference_final(), params["user_embedding.weight"],
                            params["item_embedding.weight"], N_USERS, u, i, j, 0.1)
    else:
        final = reference_final()
        e0u, e0i = ((params["user_embedding.weight"], params["item_embedding.weight"])
                    if reg_on == "initial" else (final[:N_USERS], final[N_USERS:]))
        ref = objective_reference(objective[0], final, e0u, e0i, N_USERS, u, i, j, 0.1,
                                  **objective[2])
    ref.backward()
    close(loss, ref, tol, "loss")
    for k, p in model.named_parameters():
        close(p.grad, params[k].grad, tol, f"gradient of {k}")

    recorder.clear()
    torch.manual_seed(4)
    users, items = model()
    with torch.no_grad():
        close(torch.cat([users, items]), reference_final(), tol, "final embeddings")


@pytest.mark.parametrize("name,norm,loops,nd,md", list(cases()))
def test_torch_backend_matches_dense_float64(name, norm, loops, nd, md, monkeypatch):
    check_against_reference(name, norm, loops, nd, md, monkeypatch, torch.float64, 1e-10)


OBJECTIVES = [("bpr", 3, {}), ("ccl", 4, {"margin": 0.2, "negative_weight": 3.0}),
              ("ccl", 1, {"margin": -0.3, "negative_weight": 0.5})]


@pytest.mark.parametrize("objective", OBJECTIVES, ids=lambda o: f"{o[0]}-K{o[1]}")
@pytest.mark.parametrize("name,norm,loops,nd,md", list(cases()))
def test_k_negatives_and_ccl_match_dense_float64(name, norm, loops, nd, md, objective, monkeypatch):
    check_against_reference(name, norm, loops, nd, md, monkeypatch, torch.float64, 1e-10,
                            objective)


@pytest.mark.parametrize("objective", OBJECTIVES[:2], ids=lambda o: f"{o[0]}-K{o[1]}")
@pytest.mark.parametrize("name", ["ngcf", "lightgcn", "mf"])
def test_k_negatives_with_the_final_embeddings_regularised(name, objective, monkeypatch):
    check_against_reference(name, "sym", False, 0.3 if name != "mf" else 0.0,
                            0.3 if name == "ngcf" else 0.0, monkeypatch, torch.float64, 1e-10,
                            objective, reg_on="final")


@pytest.mark.parametrize("name,nd,md", [("ngcf", 0.3, 0.3), ("lightgcn", 0.3, 0.0), ("mf", 0.0, 0.0)])
@pytest.mark.parametrize("norm,loops", [("sym", False), ("row", True)])
def test_same_seed_same_masks(name, nd, md, norm, loops):
    model = make_model(name, graph(norm, loops), nd, md).train()
    torch.manual_seed(7)
    first = torch.cat(model())
    torch.manual_seed(7)
    again = torch.cat(model())
    torch.manual_seed(8)
    other = torch.cat(model())
    assert torch.equal(first, again)
    if nd or md:
        assert not torch.equal(first, other)


@pytest.mark.skipif(not IN_TRITON_SUBPROCESS, reason="runs inside test_triton_kernels_in_interpreter")
@pytest.mark.parametrize("name,norm,loops,nd,md", [("ngcf", "sym", False, 0.3, 0.3),
                                                   ("lightgcn", "row", False, 0.3, 0.0),
                                                   ("mf", "sym", False, 0.0, 0.0)])
def test_triton_case(name, norm, loops, nd, md, monkeypatch):
    check_against_reference(name, norm, loops, nd, md, monkeypatch, torch.float32, 2e-5)


@pytest.mark.skipif(IN_TRITON_SUBPROCESS or torch.cuda.is_available(),
                    reason="the subprocess itself, or CUDA (the kernel tests run there)")
def test_triton_kernels_in_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1", GNN_KERNEL_BACKEND="triton",
               GNN_TEST_TRITON_GRADIENTS="1")
    here = Path(__file__).resolve()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                             str(here), "-k", "test_triton_case"], env=env, cwd=here.parents[2],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout, result.stdout[-2000:]
