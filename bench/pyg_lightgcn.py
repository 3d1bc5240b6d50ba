"""PyTorch Geometric's LightGCN on our graph: the side-by-side anchor of the epoch benchmark.

The only place the project imports ``torch_geometric`` (benchmark code, never the package).
The training loop is the one of PyG's own LightGCN example: a batch of (user, positive) pairs,
one uniform random item per pair as its negative, ``model(edge_index, edge_label_index)`` for
the pair scores, ``model.recommendation_loss`` (BPR with L2 ``lambda_reg`` on the batch's
layer-0 embeddings), Adam. Same graph as ours (the dataset's training pairs, users then items,
both directions), same embedding size, layers, batch size, learning rate and regulariser; one
epoch visits every training pair once in a random order (our ``sampling="pair"``). Two ways to
hand PyG the graph:

  edge_index   a (2, nnz) int64 edge list; LGConv normalises it on every call (PyG's example)
  sparse_adj   our normalised Â as a torch sparse CSR tensor, ``normalize=False`` (PyG's
               fastest path: one SpMM per layer)

Differences that favour PyG, stated: its negatives are not checked against the user's
positives (ours are exact), and its loss is computed on the batch's rows only, as ours.
"""
from __future__ import annotations

import time

import numpy as np
import torch

VARIANTS = ("edge_index", "sparse_adj")


def available() -> bool:
    try:
        import torch_geometric  # noqa: F401
    except ImportError:
        return False
    return True


class PygLightGCNRun:
    """One PyG LightGCN model, optimiser and epoch loop on a :class:`gnn.data.SplitDataset`."""

    def __init__(self, dataset, adj, device, *, variant="edge_index", dim=64, layers=3,
                 batch_size=2048, lr=1e-3, reg=1e-4, seed=0):
        from torch_geometric.nn.models import LightGCN

        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, but got {variant!r}")
        self.device, self.batch_size, self.reg = torch.device(device), batch_size, reg
        self.n_users, self.n_items = dataset.n_users, dataset.n_items
        user, item = (torch.from_numpy(np.ascontiguousarray(a)) for a in dataset.train_csr.pairs())
        item_node = item + self.n_users
        self.pairs = torch.stack([user, item_node]).to(self.device)  # (2, n_train)
        torch.manual_seed(seed)
        n_nodes = self.n_users + self.n_items
        if variant == "edge_index":
            self.graph = torch.stack([torch.cat([user, item_node]),
                                      torch.cat([item_node, user])]).to(self.device)
            self.model = LightGCN(n_nodes, dim, layers).to(self.device)
        else:  # our Â, already normalised and symmetric (so it is its own transpose)
            adj = adj.to(self.device)
            self.graph = torch.sparse_csr_tensor(adj.rowptr, adj.col.long(), adj.val,
                                                 (n_nodes, n_nodes), check_invariants=False)
            self.model = LightGCN(n_nodes, dim, layers, normalize=False).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    @property
    def n_train(self) -> int:
        return int(self.pairs.shape[1])

    def step(self, pos: torch.Tensor) -> torch.Tensor:
        """One optimiser step on the (2, b) positive pairs ``pos``; returns the detached loss."""
        neg_items = torch.randint(self.n_users, self.n_users + self.n_items, (pos.shape[1],),
                                  device=self.device, generator=self.generator)
        label_index = torch.cat([pos, torch.stack([pos[0], neg_items])], dim=1)
        pos_rank, neg_rank = self.model(self.graph, label_index).chunk(2)
        loss = self.model.recommendation_loss(pos_rank, neg_rank, node_id=label_index.unique(),
                                              lambda_reg=self.reg)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def warm_up(self, steps: int = 2) -> None:
        for _ in range(steps):
            self.step(self.pairs[:, : self.batch_size])

    def epoch(self) -> float:
        """One epoch; returns its seconds (synchronised on CUDA)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        order = torch.randperm(self.n_train, device=self.device, generator=self.generator)
        for b in range(0, self.n_train, self.batch_size):
            self.step(self.pairs[:, order[b:b + self.batch_size]])
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start
