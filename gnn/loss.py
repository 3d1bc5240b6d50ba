"""The BPR objective with its L2 regulariser (DESIGN.md §3)."""
import torch.nn.functional as F


def bpr_loss(user_emb, pos_emb, neg_emb, user0, pos0, neg0, reg: float):
    r"""Return ``(loss, bpr, l2)`` for a batch of B triples (u, i, j).

    .. math::
        L = -\frac1B \sum \log\sigma(\hat y_{ui} - \hat y_{uj})
            + \lambda \frac{\|e^0_u\|^2 + \|e^0_i\|^2 + \|e^0_j\|^2}{2B}

    ``user_emb, pos_emb, neg_emb`` are final embeddings; ``user0, pos0, neg0`` the layer-0
    embeddings the regulariser penalises (LightGCN's choice; pass the final ones to get the
    NGCF official code's). ``-log σ(x)`` is computed as ``softplus(-x)``, which stays finite.
    """
    diff = (user_emb * pos_emb).sum(-1) - (user_emb * neg_emb).sum(-1)
    bpr = F.softplus(-diff).mean()
    l2 = (user0.pow(2).sum() + pos0.pow(2).sum() + neg0.pow(2).sum()) / (2 * user_emb.shape[0])
    return bpr + reg * l2, bpr, l2
