"""Train NGCF on MovieLens with your own loop, using the public API only (docs: README, "In Python")."""
import sys

import torch

from gnn import (NGCF, Evaluator, PositiveSampler, UniformNegativeSampler, build_adjacency,
                 load_dataset, load_model, save_model)

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 40
ds = load_dataset("ml-latest-small")                      # downloaded to $GNN_DATA or ~/.cache/gnn
torch.manual_seed(0)
model = NGCF(build_adjacency(ds.train_csr), embedding_dim=64, num_layers=3)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
positives = PositiveSampler(ds.train_csr, mode="user")      # a user, then one of its items
negatives = UniformNegativeSampler(ds.train_csr, seed=0)   # items the user has not seen
valid = Evaluator(ds.valid_csr, exclude=[ds.train_csr], ks=(20,))
order = torch.Generator().manual_seed(0)

for epoch in range(1, epochs + 1):
    model.train()
    users, items = positives.epoch(order)
    for u, i in zip(users.split(2048), items.split(2048)):
        loss = model.loss(u, i, negatives.sample(u), reg=1e-4)   # BPR + L2 on layer-0 rows
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if epoch % 5 == 0 or epoch == epochs:
        model.eval()
        print(f"epoch {epoch}: loss {loss.item():.4f}, valid recall@20 {valid(*model.embeddings())['recall@20']:.4f}")

save_model(model, "ngcf-ml-latest-small.pt", dataset=ds)
model = load_model("ngcf-ml-latest-small.pt")
top = model.recommend([0], k=10, exclude=ds.seen_csr)[0]    # nothing user 0 has rated
print("user", ds.user_ids[0], "->", [ds.title(i) for i in top.tolist()])
