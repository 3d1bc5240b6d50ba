"""A model the library does not ship, through the library's Trainer: LightGCN with learned layer
weights and learnable edge weights, trained, checkpointed, resumed, loaded and exported for an
inner-product index (docs/ARCHITECTURE.md, "Adding a model")."""
import dataclasses
import sys

import torch
from torch import nn

import gnn
from gnn.cli import export


class LearnedLightGCN(gnn.LightGCN):
    """e* = sum_k softmax(beta)_k E^k over Â(w): w_ui = 2 sigmoid(theta_ui), one learned weight
    per training interaction (all 1 at the start: LightGCN's Â), normalised as Â is."""

    def __init__(self, adj, embedding_dim=64, num_layers=3):
        super().__init__(adj, embedding_dim, num_layers)
        self.init_args = dict(embedding_dim=embedding_dim, num_layers=num_layers)
        self.beta = nn.Parameter(torch.zeros(num_layers + 1))
        self.theta = nn.Parameter(torch.zeros(adj.interactions.nnz))

    def propagate(self, adj):
        return super().propagate(adj.reweighted(2 * torch.sigmoid(self.theta)))

    def readout(self, layers, rows=None):
        weights = torch.softmax(self.beta, 0)
        return sum(w * (x if rows is None else x.index_select(0, rows))
                   for w, x in zip(weights, layers))


gnn.register_model("learned-lightgcn", LearnedLightGCN)
epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
config = gnn.TrainConfig(model="learned-lightgcn", dataset="ml-latest-small", epochs=epochs,
                         lr=5e-3, checkpoint="learned.pt", device="cpu", progress=False)
gnn.Trainer(config).fit()                                        # a checkpoint every epoch
summary = gnn.Trainer(dataclasses.replace(config, epochs=epochs + 2, resume=True)).fit()
model = gnn.load_model("learned.pt")                             # best validation weights
w = 2 * torch.sigmoid(model.theta.detach())
print(f"test recall@20 {summary['recall@20']:.4f}; layer weights "
      f"{[round(v, 3) for v in torch.softmax(model.beta, 0).tolist()]}; edge weights in "
      f"[{w.min():.3f}, {w.max():.3f}]")
sys.exit(export.main(["learned.pt", "--out", "learned-export"]))  # checked against recommend()
