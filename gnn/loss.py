r"""Training objectives on a batch of B (user, positive) pairs with K negatives each
(docs/DESIGN.md §3): BPR and the cosine contrastive loss (CCL, from SimpleX).

Every objective takes the batch's final embeddings ``e_u``, ``e_i`` (B, d) and ``e_j``, either
(B, d) (one negative per pair) or (B, K, d) (K per pair), and the layer-0 rows ``u0, i0, j0`` of
the same shapes that the L2 term penalises:

.. math::
    \mathrm{L2} = \frac{1}{2B} \sum_b \Big(\|u^0_b\|^2 + \|i^0_b\|^2
                  + \frac1K \sum_k \|j^0_{bk}\|^2\Big)

(the negatives' mean, so that λ means the same for every K; with K = 1 it is LightGCN's term).
An objective returns ``(loss, main, l2)`` with ``loss = main + λ L2``.

* BPR: ``main = mean_b mean_k softplus(ŷ_uj − ŷ_ui)`` (``−log σ(ŷ_ui − ŷ_uj)``, the mean of the K
  pairwise terms), ``ŷ = ⟨e_u, e_·⟩``.
* CCL: ``main = mean_b [(1 − cos(e_u, e_i)) + w · mean_k max(0, cos(e_u, e_j) − m)]`` with the
  margin ``m`` and the negative weight ``w``; ``cos(a, b) = ⟨a, b⟩ / (max(‖a‖, ε) max(‖b‖, ε))``.

:class:`BPR` and :class:`CosineContrastive` hold an objective's options (validated when made);
:func:`make_objective` builds one by name (``TrainConfig.loss``, ``--loss``).
"""
from __future__ import annotations

import math
from typing import Dict

import torch
import torch.nn.functional as F

_EPS = 1e-12  # F.normalize's: a zero vector has cosine 0 with everything


def _l2(user0, pos0, neg0) -> torch.Tensor:
    """The L2 term of the module docstring (``neg0``: (B, d) or (B, K, d))."""
    neg = neg0.pow(2).sum() if neg0.dim() == 2 else neg0.pow(2).sum() / neg0.shape[1]
    return (user0.pow(2).sum() + pos0.pow(2).sum() + neg) / (2 * user0.shape[0])


def _negative_dots(user_emb, neg_emb) -> torch.Tensor:
    """``⟨e_u, e_j⟩`` for (B, K, d) negatives: (B, K), one batched matrix-vector product."""
    return torch.bmm(neg_emb, user_emb.unsqueeze(2)).squeeze(2)


def bpr_loss(user_emb, pos_emb, neg_emb, user0, pos0, neg0, reg: float):
    r"""Return ``(loss, bpr, l2)`` for B pairs with one negative each (``neg_emb`` (B, d)) or K
    each (``neg_emb`` (B, K, d)).

    .. math::
        L = \frac1{BK} \sum_{b,k} -\log\sigma(\hat y_{ui} - \hat y_{uj_k}) + \lambda\,\mathrm{L2}

    ``user_emb, pos_emb, neg_emb`` are final embeddings; ``user0, pos0, neg0`` the layer-0
    embeddings the regulariser penalises (LightGCN's choice; pass the final ones to get the
    NGCF official code's). ``-log σ(x)`` is computed as ``softplus(-x)``, which stays finite.
    """
    if neg_emb.dim() == 2:
        diff = (user_emb * pos_emb).sum(-1) - (user_emb * neg_emb).sum(-1)
    else:
        diff = (user_emb * pos_emb).sum(-1, keepdim=True) - _negative_dots(user_emb, neg_emb)
    bpr = F.softplus(-diff).mean()
    l2 = _l2(user0, pos0, neg0)
    return bpr + reg * l2, bpr, l2


def ccl_loss(user_emb, pos_emb, neg_emb, user0, pos0, neg0, reg: float, margin: float,
             negative_weight: float):
    r"""Return ``(loss, ccl, l2)``: SimpleX's cosine contrastive loss (module docstring).

    .. math::
        L = \frac1B \sum_b \Big[(1 - \cos(e_u, e_i))
            + \frac{w}{K} \sum_k \max(0, \cos(e_u, e_{j_k}) - m)\Big] + \lambda\,\mathrm{L2}

    Pulls each positive's cosine towards 1 and pushes only the negatives whose cosine is above
    the margin ``m``; ``w`` weighs the negatives' mean against the positive.
    """
    user_unit = F.normalize(user_emb, dim=-1, eps=_EPS)
    pos_cos = (user_unit * F.normalize(pos_emb, dim=-1, eps=_EPS)).sum(-1)
    if neg_emb.dim() == 2:
        neg_cos = (user_unit * F.normalize(neg_emb, dim=-1, eps=_EPS)).sum(-1, keepdim=True)
    else:  # dot products first, then one division by the norms: no normalised (B, K, d) copy
        norms = torch.linalg.vector_norm(neg_emb, dim=-1).clamp_min(_EPS)
        neg_cos = _negative_dots(user_unit, neg_emb) / norms
    ccl = (1 - pos_cos).mean() + negative_weight * F.relu(neg_cos - margin).mean()
    l2 = _l2(user0, pos0, neg0)
    return ccl + reg * l2, ccl, l2


def _number(value, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: {name} must be a finite number, but got {value!r}")
    return float(value)


class Objective:
    """A training objective with its options; called as ``objective(eu, ei, ej, u0, i0, j0,
    reg) -> (loss, main, l2)`` (module docstring). ``options()`` gives what makes it."""

    name = ""

    def options(self) -> Dict[str, float]:
        return {}

    def __call__(self, user_emb, pos_emb, neg_emb, user0, pos0, neg0, reg: float):
        raise NotImplementedError

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.options() == self.options()

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.options().items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({args})"


class BPR(Objective):
    """Bayesian personalised ranking (:func:`bpr_loss`); no options."""

    name = "bpr"

    def __call__(self, user_emb, pos_emb, neg_emb, user0, pos0, neg0, reg: float):
        return bpr_loss(user_emb, pos_emb, neg_emb, user0, pos0, neg0, reg)


class CosineContrastive(Objective):
    """SimpleX's cosine contrastive loss (:func:`ccl_loss`), meant for many negatives per pair.

    Args:
        margin: ``m`` in [-1, 1): negatives with a cosine below it cost nothing (default 0.9).
        negative_weight: ``w`` > 0, the weight of the negatives' mean (default 150).
    """

    name = "ccl"

    def __init__(self, margin: float = 0.9, negative_weight: float = 150.0):
        where = "CosineContrastive()"
        margin = _number(margin, "margin", where)
        negative_weight = _number(negative_weight, "negative_weight", where)
        if not -1.0 <= margin < 1.0:
            raise ValueError(f"{where}: margin must be in [-1, 1) (a cosine; at 1 or more no "
                             f"negative would ever count), but got {margin!r}")
        if negative_weight <= 0:
            raise ValueError(f"{where}: negative_weight must be > 0 (without the negatives' "
                             f"term every embedding collapses onto its positives), but got "
                             f"{negative_weight!r}")
        self.margin, self.negative_weight = margin, negative_weight

    def options(self) -> Dict[str, float]:
        return {"margin": self.margin, "negative_weight": self.negative_weight}

    def __call__(self, user_emb, pos_emb, neg_emb, user0, pos0, neg0, reg: float):
        return ccl_loss(user_emb, pos_emb, neg_emb, user0, pos0, neg0, reg, self.margin,
                        self.negative_weight)


#: The objectives by name (``TrainConfig.loss``, ``--loss``).
OBJECTIVES = {"bpr": BPR, "ccl": CosineContrastive}


def make_objective(name: str, **options) -> Objective:
    """The objective ``name`` with ``options`` (its constructor's keyword arguments; None keeps
    a default). Unknown names and options are errors that list the known ones."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown loss {name!r} (known: {sorted(OBJECTIVES)})")
    cls = OBJECTIVES[name]
    given = {k: v for k, v in options.items() if v is not None}
    known = set(cls().options())
    unknown = sorted(set(given) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise ValueError(f"loss {name!r} has no option(s) {unknown} (its options: {takes})")
    return cls(**given)
