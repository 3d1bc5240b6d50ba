"""One full training step: propagation over the whole graph, BPR loss on a batch, backward, Adam.

Group ``train_step | <size>`` puts the models side by side:
  NGCF       3 layers of gnn.kernels.ngcf_layer (d = 64 → 64 → 64 → 64), message dropout 0.1
  LightGCN   3 propagation steps of gnn.kernels.csr_spmm, layer mean
  MF         no propagation (the floor: embedding lookups, loss, Adam)
On CUDA the graph models also run with GNN_KERNEL_BACKEND=torch ("[torch backend]"), the
pure-torch reference, so the Triton kernels' share of a step is visible.

The step is composed from public pieces (model forward, gnn.loss.bpr_loss, backward, Adam), with
a fixed batch of 2048 (u, i, j) triples (j uniform over items: sampling is timed separately);
the regulariser (λ = 1e-4) is on the layer-0 embeddings of the batch, as in LightGCN.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench.conftest import base_info, embedding_dim, graph, interactions, optional, run_benchmark

BATCH = 2048
REG = 1e-4
PROVIDERS = ["NGCF", "LightGCN", "MF", "NGCF [torch backend]", "LightGCN [torch backend]"]


def bpr_loss(eu, ei, ej, u0, i0, j0, reg):
    """gnn.loss.bpr_loss when present, else the same formula (DESIGN.md §3) written out."""
    try:
        from gnn.loss import bpr_loss as ours
    except ImportError:
        diff = (eu * ei).sum(-1) - (eu * ej).sum(-1)
        l2 = (u0.pow(2).sum() + i0.pow(2).sum() + j0.pow(2).sum()) / (2 * eu.shape[0])
        return F.softplus(-diff).mean() + reg * l2
    return ours(eu, ei, ej, u0, i0, j0, reg)[0]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_train_step(benchmark, provider, size, device, monkeypatch):
    model_name, _, backend = provider.partition(" [")
    if backend:
        if device.type != "cuda":
            pytest.skip("the torch backend is what runs on the CPU anyway (see the plain provider)")
        monkeypatch.setenv("GNN_KERNEL_BACKEND", "torch")
    model_cls = optional("gnn.models", model_name)
    adj = graph(size, device)
    d = embedding_dim()
    torch.manual_seed(0)
    kwargs = {"dim": d}
    if model_name == "NGCF":
        kwargs.update(layers=3, message_dropout=0.1)
    elif model_name == "LightGCN":
        kwargs.update(num_layers=3)
    model = model_cls(adj, **kwargs).to(device)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    user, item, n_users, n_items = interactions(size)
    gen = torch.Generator().manual_seed(0)
    pick = torch.randint(len(user), (BATCH,), generator=gen)
    u = torch.as_tensor(user)[pick].to(device)
    i = torch.as_tensor(item)[pick].to(device)
    j = torch.randint(n_items, (BATCH,), generator=gen).to(device)

    def step():
        user_emb, item_emb = model(adj)
        u0, i0 = model.user_embedding.weight[u], model.item_embedding.weight[i]
        j0 = model.item_embedding.weight[j]
        loss = bpr_loss(user_emb[u], item_emb[i], item_emb[j], u0, i0, j0, REG)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    def check(loss):
        assert torch.isfinite(loss), loss

    info = base_info("train_step", provider, size, adj, d, torch.float32, device)
    info.update(batch=BATCH, layers=3 if model_name != "MF" else 0,
                repr_bytes=adj.rowptr.nbytes + adj.col.nbytes + adj.val.nbytes, repr="CSR")
    if model_name == "MF":
        info["repr_bytes"], info["repr"] = 0, "no graph"
    slow = device.type == "cpu" and adj.nnz > 1_000_000 and model_name != "MF"
    run_benchmark(benchmark, step, info, device=device, check=check, warmup=not slow)
