"""Dense float64 re-implementations of the models, the oracle of the gradient suite.

Written from the math of docs/DESIGN.md §2-3 with plain dense torch ops and autograd (small
graphs only: the dense N x N matrix is the point of a reference). The random masks are not drawn
here: the tests record the masks the library drew (:class:`MaskRecorder`) and replay them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

import gnn.models.ngcf as ngcf_module
from gnn.adjacency import Adjacency


def dense(adj: Adjacency) -> torch.Tensor:
    """The adjacency (with its current values) as a dense float64 matrix."""
    rowptr, col = adj.rowptr.cpu().long(), adj.col.cpu().long()
    row = torch.repeat_interleave(torch.arange(adj.n_nodes), torch.diff(rowptr))
    a = torch.zeros(adj.n_nodes, adj.n_nodes, dtype=torch.float64)
    a.index_put_((row, col), adj.val.detach().cpu().double(), accumulate=True)
    return a


class MaskRecorder:
    """Records the dropped adjacency and message masks a model draws (monkeypatch fixture)."""

    def __init__(self, monkeypatch):
        self.adjacencies, self.messages = [], []
        original_dropout = Adjacency.dropout
        original_mask = ngcf_module.message_dropout_mask

        def dropout(adj, p, generator=None):
            out = original_dropout(adj, p, generator)
            self.adjacencies.append(out)
            return out

        def mask(like, p, rows=None):  # records the whole mask; returns the rows asked for
            out = original_mask(like, p)
            self.messages.append(out.detach().clone())
            return out if rows is None else out[rows]

        monkeypatch.setattr(Adjacency, "dropout", dropout)
        monkeypatch.setattr(ngcf_module, "message_dropout_mask", mask)

    def clear(self):
        self.adjacencies.clear()
        self.messages.clear()


def ngcf_final(e0, w1, w2, b, a, self_loop, slope, message_masks):
    """E^0 ‖ norm(E^1) ‖ … with E^l = LeakyReLU((ÂE + [self_loop]E) W1 + (ÂE ⊙ E) W2 + b) · mask."""
    layers, x = [e0], e0
    for l in range(len(w1)):
        s = a @ x
        z = (s + x if self_loop else s) @ w1[l] + (s * x) @ w2[l] + b[l]
        x = F.leaky_relu(z, slope)
        if message_masks:
            x = x * message_masks[l].double()
        layers.append(x)
    return torch.cat([layers[0]] + [F.normalize(h, dim=1) for h in layers[1:]], dim=1)


def lightgcn_final(e0, a, num_layers, alpha):
    layers = [e0]
    for _ in range(num_layers):
        layers.append(a @ layers[-1])
    return sum(w * x for w, x in zip(alpha, layers))


def final_embeddings(model, params, a, message_masks):
    """Final node embeddings of ``model``'s math with the float64 leaves ``params``."""
    e0 = torch.cat([params["user_embedding.weight"], params["item_embedding.weight"]])
    name = type(model).__name__
    if name == "NGCF":
        L = model.num_layers
        return ngcf_final(e0, [params[f"w1.{l}"] for l in range(L)],
                          [params[f"w2.{l}"] for l in range(L)],
                          [params[f"bias.{l}"] for l in range(L)], a, model.self_loop,
                          model.negative_slope, message_masks)
    if name == "LightGCN":
        return lightgcn_final(e0, a, model.num_layers, model.alpha)
    return e0


def bpr_reference(final, e0_users, e0_items, n_users, u, i, j, reg):
    eu, ei, ej = final[u], final[n_users + i], final[n_users + j]
    diff = (eu * ei).sum(1) - (eu * ej).sum(1)
    l2 = (e0_users[u].pow(2).sum() + e0_items[i].pow(2).sum() + e0_items[j].pow(2).sum())
    return F.softplus(-diff).mean() + reg * l2 / (2 * u.numel())


def objective_reference(name, final, e0_users, e0_items, n_users, u, i, j, reg, **options):
    """BPR or the cosine contrastive loss with ``j`` of shape (B,) or (B, K), from the math of
    DESIGN.md §3: each negative column scored on its own, the L2 term with the negatives' mean
    over the K columns."""
    columns = [j] if j.dim() == 1 else list(j.T)
    eu, ei = final[u], final[n_users + i]
    unit = lambda x: x / x.pow(2).sum(1, keepdim=True).sqrt().clamp_min(1e-12)  # noqa: E731
    terms = []
    for col in columns:
        ej = final[n_users + col]
        if name == "bpr":
            terms.append(-torch.log(torch.sigmoid((eu * ei).sum(1) - (eu * ej).sum(1))))
        else:
            cos = (unit(eu) * unit(ej)).sum(1)
            terms.append(options["negative_weight"] * torch.clamp(cos - options["margin"], min=0))
    main = torch.stack(terms, 1).mean(1)
    if name == "ccl":
        main = main + 1 - (unit(eu) * unit(ei)).sum(1)
    negs = sum(e0_items[col].pow(2).sum() for col in columns) / len(columns)
    l2 = e0_users[u].pow(2).sum() + e0_items[i].pow(2).sum() + negs
    return main.mean() + reg * l2 / (2 * u.numel())
