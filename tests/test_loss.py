"""gnn.loss: the BPR loss against a float64 formula written out by hand, and its gradient."""
import math

import torch

from gnn.loss import bpr_loss


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
