r"""XSimGCL: LightGCN trained with a noise-contrastive view (Yu et al., "XSimGCL: Towards
Extremely Simple Graph Contrastive Learning for Recommendation", TKDE 2023; SimGCL, SIGIR 2022).

In training every layer gets a small random perturbation: ``E'^{k+1} = Â E'^k + Δ^{k+1}`` with
``Δ = ε · sign(Â E'^k) ⊙ normalize(X)``, ``X ~ U(0, 1)`` entrywise: a vector of length ε per
row, in the same orthant as the embedding it is added to (it moves the direction a little and
never flips a sign; a zero entry counts by its sign bit). The final embedding is the mean of
the layers after the input, ``e* = (1/K) Σ_{k=1..K} E'^k``, and the two views of the
contrastive term come from the same propagation: ``e*`` and the perturbed layer ``E'^{l*}``. With ``z = x / ‖x‖`` and the batch's
distinct users U (and, apart, its distinct positive items),

.. math::
    L_{cl} = \frac1{|U|} \sum_{u \in U} -\log
             \frac{\exp(z^*_u \cdot z^{l*}_u / \tau)}{\sum_{v \in U} \exp(z^*_u \cdot z^{l*}_v / \tau)}

and the training loss is the objective (BPR or CCL, gnn/loss.py) on the perturbed ``e*``, plus
``λ (L_cl(users) + L_cl(items))``. Outside training nothing is perturbed:
``e* = (1/K) Σ_k Â^k E^0``. The gradient of a perturbed layer is the unperturbed one's (the
noise's direction depends on the embeddings only through a sign), so the perturbation costs one
random draw per layer and no extra propagation.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from gnn.adjacency import Adjacency
from gnn.loss import Objective
from gnn.models.lightgcn import LightGCN, batch_readouts


def orthant_noise(s: torch.Tensor, length: float, rows=None) -> torch.Tensor:
    """``Δ = length · sign(S) ⊙ X / ‖X‖`` row by row, ``X ~ U(0, 1)`` entrywise, for ``S = s``
    (no gradient; where an entry of ``S`` is zero, its sign bit decides). ``X`` comes from
    16-bit uniforms (``(b + 1/2) / 2^16``, four per 64-bit draw, as NGCF's dropout masks): its
    normalisation cancels the scale. ``rows`` keeps only
    those rows of the noise drawn for all of ``s`` (the same draws whatever the rows)."""
    s = s.detach()
    words = torch.randint(-2**63, 2**63 - 1, ((s.numel() + 3) // 4,), dtype=torch.int64,
                          device=s.device)
    x = words.view(torch.int16)[: s.numel()].view(s.shape)
    if rows is not None:
        x, s = x[rows], s[rows]
    x = x.to(s.dtype).add_(32768.5)  # uniform on (0, 2^16)
    x.mul_(length / torch.linalg.vector_norm(x, dim=1, keepdim=True))
    return torch.copysign(x, s, out=x)  # one pass; sign(0) is the sign bit of the zero


def info_nce(view, other, temperature: float) -> torch.Tensor:
    """InfoNCE of row ``r`` of ``view`` against row ``r`` of ``other`` among all rows of
    ``other`` (cosine similarities over ``temperature``), averaged over the rows."""
    a, b = F.normalize(view, dim=1), F.normalize(other, dim=1)
    logits = a @ b.T / temperature
    return -torch.diagonal(F.log_softmax(logits, dim=1)).mean()


class XSimGCL(LightGCN):
    """LightGCN's propagation with XSimGCL's perturbation and contrastive term (module docstring).

    Args:
        adj: the training adjacency (symmetric normalisation).
        embedding_dim: embedding size (default 64).
        num_layers: ``K`` >= 1 (default 2).
        noise: ``ε`` >= 0, the length of each row's perturbation (default 0.2).
        cl_weight: ``λ`` >= 0, the weight of the contrastive term (default 0.2).
        temperature: ``τ`` > 0 (default 0.15).
        cl_layer: ``l*`` in [1, K], the layer contrasted with the final embedding (default 1).
        init_std: standard deviation of the normal initialisation of ``E^0`` (default 0.1).
    """

    config_options = {"dim": "embedding_dim", "layers": "num_layers", "cl_noise": "noise",
                      "cl_weight": "cl_weight", "cl_temperature": "temperature",
                      "cl_layer": "cl_layer"}

    def __init__(self, adj: Adjacency, embedding_dim: int = 64, num_layers: int = 2,
                 noise: float = 0.2, cl_weight: float = 0.2, temperature: float = 0.15,
                 cl_layer: int = 1, init_std: float = 0.1):
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"XSimGCL(): num_layers must be an int >= 1, but got {num_layers!r}")
        alpha = [0.0] + [1.0 / num_layers] * num_layers  # the layers after the input, averaged
        super().__init__(adj, embedding_dim, num_layers, alpha=alpha, init_std=init_std)
        for name, value, ok, rule in (
                ("noise", noise, lambda v: v >= 0, ">= 0"),
                ("cl_weight", cl_weight, lambda v: v >= 0, ">= 0"),
                ("temperature", temperature, lambda v: v > 0, "> 0")):
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value) or not ok(value)):
                raise ValueError(f"XSimGCL(): {name} must be a finite number {rule}, but got "
                                 f"{value!r}")
        if isinstance(cl_layer, bool) or not isinstance(cl_layer, int) \
                or not 1 <= cl_layer <= num_layers:
            raise ValueError(f"XSimGCL(): cl_layer must be an int in [1, num_layers={num_layers}],"
                             f" but got {cl_layer!r}")
        self.init_args = dict(embedding_dim=embedding_dim, num_layers=num_layers, noise=noise,
                              cl_weight=cl_weight, temperature=temperature, cl_layer=cl_layer,
                              init_std=init_std)
        self.noise, self.cl_weight = float(noise), float(cl_weight)
        self.temperature, self.cl_layer = float(temperature), cl_layer
        # LightGCN's batch path with the noise added on the way: XSimGCL's own math only.
        self._xsimgcl_fast = self._math_is(XSimGCL)

    def layer_step(self, k, s, x, rows=None, n_nodes=None):
        """``E'^{k+1} = S + Δ`` in training, ``S`` otherwise (``Δ``: :func:`orthant_noise`)."""
        if not (self.training and self.noise > 0):
            return s
        if rows is None:
            return s + orthant_noise(s, self.noise)
        raise NotImplementedError("XSimGCL draws its noise for whole layers; it does not run "
                                  "on a part of the graph (gnn.distributed)")

    def _perturb(self, k, s):
        """Layer ``k + 1`` from ``S`` in place (the batch path: no autograd there)."""
        return s.add_(orthant_noise(s, self.noise)) if self.training and self.noise > 0 else s

    def loss(self, users, pos_items, neg_items, reg: float = 1e-4, *, reg_on: str = "initial",
             check: bool = True, objective: Optional[Objective] = None) -> torch.Tensor:
        """The objective (default BPR) on the perturbed final embeddings plus ``λ`` times the
        contrastive terms of the batch's distinct users and distinct positive items, from one
        propagation; arguments as :meth:`gnn.GraphRecommender.loss`."""
        objective, users, pos_items, flat, per_pair = self._loss_arguments(
            users, pos_items, neg_items, reg_on, objective, check)
        rows = self._batch_node_rows(users, pos_items, flat)
        sizes = [users.numel(), pos_items.numel(), flat.numel()]
        # The contrastive rows: the batch's distinct users, then its distinct positive items.
        distinct_users = torch.unique(users)
        cl_rows = torch.cat([distinct_users, torch.unique(pos_items) + self.n_users])
        n_cl_users = distinct_users.numel()
        view = [0.0] * self.cl_layer + [1.0]  # layer l* alone
        if self._xsimgcl_fast:  # one pass of LightGCN's batch path, noise added on the way
            readouts = [(self.alpha, rows), ((1.0,), rows), (self.alpha, cl_rows), (view, cl_rows)]
            final, rows0, cl_final, cl_view = batch_readouts(
                self, self.training_adjacency(self.adj), readouts, self._perturb)
        else:  # a subclass's own math: autograd through its layers
            layers = self.propagate(self.adj)
            final, rows0 = self.readout(layers, rows), layers[0].index_select(0, rows)
            cl_final = self.readout(layers, cl_rows)
            cl_view = layers[self.cl_layer].index_select(0, cl_rows)
        eu, ei, ej = final.split(sizes)
        u0, i0, j0 = (eu, ei, ej) if reg_on == "final" else rows0.split(sizes)
        if per_pair is not None:
            ej, j0 = ej.view(-1, per_pair, ej.shape[-1]), j0.view(-1, per_pair, j0.shape[-1])
        loss = objective(eu, ei, ej, u0, i0, j0, reg)[0]
        if self.cl_weight > 0:
            for a, b in zip(cl_final.split([n_cl_users, cl_rows.numel() - n_cl_users]),
                            cl_view.split([n_cl_users, cl_rows.numel() - n_cl_users])):
                loss = loss + self.cl_weight * info_nce(a, b, self.temperature)
        return loss


__all__ = ["XSimGCL", "info_nce", "orthant_noise"]
