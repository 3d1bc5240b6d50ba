"""gnn.loss: BPR (one or K negatives per pair) and the cosine contrastive loss against float64
formulas written out by hand with Python floats, their gradients by finite differences, and the
errors on bad options."""
import math

import pytest
import torch

from gnn.loss import BPR, OBJECTIVES, CosineContrastive, bpr_loss, ccl_loss, make_objective


def test_bpr_loss_matches_formula():
    g = torch.Generator().manual_seed(0)
    u, i, j = (torch.randn(5, 3, generator=g, dtype=torch.float64) for _ in range(3))
    loss, bpr, l2 = bpr_loss(u, i, j, u, i, j, reg=0.1)
    expected_bpr = -sum(math.log(1 / (1 + math.exp(-(float(u[b] @ i[b]) - float(u[b] @ j[b])))))
                        for b in range(5)) / 5
    expected_l2 = (u.square().sum() + i.square().sum() + j.square().sum()).item() / (2 * 5)
    assert math.isclose(bpr.item(), expected_bpr, rel_tol=1e-12)
    assert math.isclose(l2.item(), expected_l2, rel_tol=1e-12)
    assert math.isclose(loss.item(), expected_bpr + 0.1 * expected_l2, rel_tol=1e-12)


def test_bpr_loss_is_finite_for_huge_margins():
    u = torch.tensor([[100.0]])
    loss, _, _ = bpr_loss(u, -u, u, u, u, u, reg=0.0)
    assert torch.isfinite(loss) and loss.item() > 1000


def test_bpr_loss_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(1)
    args = [torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(6)]
    assert torch.autograd.gradcheck(lambda *t: bpr_loss(*t, reg=0.3)[0], args)


# -- K negatives per pair and the cosine contrastive loss ---------------------------------------


def _rows(seed, b, k, d, zero_row=False):
    g = torch.Generator().manual_seed(seed)
    u, i = (torch.randn(b, d, generator=g, dtype=torch.float64) for _ in range(2))
    j = torch.randn(b, k, d, generator=g, dtype=torch.float64)
    if zero_row:  # a zero embedding: cosine 0 with everything, no NaN
        j[0, 0] = 0.0
        u[1] = 0.0
    return u, i, j


def _cos(a, b):
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (max(na, 1e-12) * max(nb, 1e-12))


def _by_hand(kind, u, i, j, reg, margin=None, weight=None):
    """The objectives written out with Python floats, pair by pair and negative by negative."""
    b, k = j.shape[0], j.shape[1]
    total = 0.0
    for r in range(b):
        ur, ir = u[r].tolist(), i[r].tolist()
        if kind == "bpr":
            pos = sum(x * y for x, y in zip(ur, ir))
            for c in range(k):
                neg = sum(x * y for x, y in zip(ur, j[r, c].tolist()))
                total += math.log1p(math.exp(-(pos - neg))) / (b * k)
        else:
            total += (1 - _cos(ur, ir)) / b
            for c in range(k):
                total += weight * max(0.0, _cos(ur, j[r, c].tolist()) - margin) / (b * k)
    l2 = (float(u.pow(2).sum()) + float(i.pow(2).sum()) + float(j.pow(2).sum()) / k) / (2 * b)
    return total + reg * l2, total, l2


@pytest.mark.parametrize("b,k,d", [(1, 1, 1), (5, 3, 7), (6, 17, 4)])
def test_bpr_with_k_negatives_is_the_mean_of_the_pairwise_terms(b, k, d):
    u, i, j = _rows(b + k + d, b, k, d)
    got = bpr_loss(u, i, j, u, i, j, reg=0.3)
    for a, e in zip(got, _by_hand("bpr", u, i, j, 0.3)):
        assert math.isclose(a.item(), e, rel_tol=1e-12)


def test_bpr_with_one_negative_in_either_shape_is_the_same():
    u, i, j = _rows(3, 8, 1, 5)
    flat, per_pair = bpr_loss(u, i, j[:, 0], u, i, j[:, 0], 0.2), bpr_loss(u, i, j, u, i, j, 0.2)
    assert all(torch.allclose(a, b, rtol=1e-14, atol=0) for a, b in zip(flat, per_pair))


@pytest.mark.parametrize("margin,weight", [(0.0, 1.0), (0.4, 7.5), (-0.5, 150.0)])
@pytest.mark.parametrize("b,k,d", [(1, 1, 1), (5, 3, 7), (6, 17, 4)])
def test_ccl_matches_the_formula(b, k, d, margin, weight):
    u, i, j = _rows(b * k + d, b, k, d, zero_row=b > 1)
    got = ccl_loss(u, i, j, u, i, j, 0.1, margin, weight)
    for a, e in zip(got, _by_hand("ccl", u, i, j, 0.1, margin, weight)):
        assert torch.isfinite(a) and math.isclose(a.item(), e, rel_tol=1e-12, abs_tol=1e-15)
    one = ccl_loss(u, i, j[:, 0], u, i, j[:, 0], 0.1, margin, weight)[1]  # (B, d) negatives
    assert math.isclose(one.item(), _by_hand("ccl", u, i, j[:, :1], 0.1, margin, weight)[1],
                        rel_tol=1e-12)


@pytest.mark.parametrize("kind", ["bpr", "ccl"])
def test_k_negative_gradients_match_finite_differences(kind):
    g = torch.Generator().manual_seed(4)
    shapes = [(4, 3), (4, 3), (4, 5, 3), (4, 3), (4, 3), (4, 5, 3)]
    args = [torch.randn(*s, generator=g, dtype=torch.float64, requires_grad=True) for s in shapes]
    if kind == "bpr":
        f = lambda *t: bpr_loss(*t, reg=0.3)[0]  # noqa: E731
    else:  # margin 0.1: the random cosines sit well away from the hinge's kink
        f = lambda *t: ccl_loss(*t, 0.3, 0.1, 4.0)[0]  # noqa: E731
    assert torch.autograd.gradcheck(f, args)


def test_ccl_pulls_positives_and_pushes_only_negatives_above_the_margin():
    u = torch.tensor([[1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    i = torch.tensor([[0.0, 1.0]], dtype=torch.float64, requires_grad=True)
    j = torch.tensor([[[1.0, 0.1], [-1.0, 0.0]]], dtype=torch.float64, requires_grad=True)
    loss = ccl_loss(u, i, j, u, i, j, 0.0, 0.5, 2.0)[0]
    loss.backward()
    assert j.grad[0, 1].abs().max() == 0  # cosine -1 < margin: no gradient
    assert j.grad[0, 0].abs().max() > 0 and i.grad.abs().max() > 0


def test_objectives_by_name_and_their_errors():
    assert make_objective("bpr") == BPR() and sorted(OBJECTIVES) == ["bpr", "ccl"]
    ccl = make_objective("ccl", margin=0.5, negative_weight=None)
    assert ccl == CosineContrastive(0.5) and ccl.options() == {"margin": 0.5,
                                                               "negative_weight": 150.0}
    assert repr(ccl) == "CosineContrastive(margin=0.5, negative_weight=150.0)"
    with pytest.raises(ValueError, match=r"unknown loss 'hinge' \(known: \['bpr', 'ccl'\]\)"):
        make_objective("hinge")
    with pytest.raises(ValueError, match=r"loss 'bpr' has no option\(s\) \['margin'\] "
                                         r"\(its options: none\)"):
        make_objective("bpr", margin=0.5)
    with pytest.raises(ValueError, match=r"no option\(s\) \['temperature'\] \(its options: "
                                         r"margin, negative_weight\)"):
        make_objective("ccl", temperature=0.2)
    for bad, match in [(dict(margin=1.0), "margin must be in \\[-1, 1\\)"),
                       (dict(margin=-1.5), "margin must be in"),
                       (dict(margin=True), "margin must be a finite number"),
                       (dict(margin=float("nan")), "margin must be a finite number"),
                       (dict(negative_weight=0), "negative_weight must be > 0"),
                       (dict(negative_weight="10"), "negative_weight must be a finite number")]:
        with pytest.raises(ValueError, match=match):
            CosineContrastive(**bad)
