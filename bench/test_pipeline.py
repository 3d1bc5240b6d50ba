"""The non-kernel parts of an epoch, on the real datasets of the preset, split as the trainer does.

  evaluate_all_users  gnn.evaluation.Evaluator (built once, 1024 users per chunk) against the
                      whole users × items score matrix at once ("OOM (needs X)" where it does
                      not fit); random embeddings, training and validation items excluded, K = 20
  negative_sampling   one epoch of negatives (one per training pair), UniformNegativeSampler's
                      methods "rank" and "rejection"
  load_ratings        gnn.load_dataset against a plain parse of the same files
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bench.measure import DIM, base_info, memory_budget, not_run, run_benchmark
from gnn import UniformNegativeSampler, load_dataset
from gnn.data import data_root
from gnn.evaluation import Evaluator

K = 20
pytestmark = pytest.mark.real_data


def sizes(ds):
    """What base_info reads of an adjacency: N and nnz of the bipartite training graph."""
    return SimpleNamespace(n_users=ds.n_users, n_items=ds.n_items, n_nodes=ds.n_users + ds.n_items,
                           nnz=2 * ds.train_csr.nnz)


def excluded(ds):
    return [c for c in (ds.train_csr, ds.valid_csr) if c is not None]


def keys(csrs, n_items, device):
    flat = np.concatenate([c.users() * n_items + c.indices for c in csrs])
    return torch.from_numpy(flat).to(device)


def dense_recall_ndcg(user_emb, item_emb, exclude_keys, test_keys, k=K):
    """recall@k / ndcg@k from the full (n_users × n_items) score matrix: the memory-naive way."""
    scores = user_emb @ item_emb.T
    scores.view(-1)[exclude_keys] = float("-inf")
    relevant = torch.zeros_like(scores, dtype=torch.bool)
    relevant.view(-1)[test_keys] = True
    hits = relevant.gather(1, torch.topk(scores, k, dim=1).indices).float()
    n_test = relevant.sum(1)
    users = n_test > 0
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, device=scores.device, dtype=torch.float32))
    idcg = torch.cumsum(discount, 0)[(n_test.clamp(1, k) - 1)]
    return {f"recall@{k}": float((hits.sum(1) / n_test.clamp(min=1))[users].mean()),
            f"ndcg@{k}": float(((hits * discount).sum(1) / idcg)[users].mean())}


@pytest.mark.parametrize("provider", ["ours_chunked", "dense_scores"])
def test_evaluate_all_users(benchmark, provider, size, split_dataset, device):
    ds, d = split_dataset, DIM
    info = base_info("evaluate_all_users", provider, size, sizes(ds), d, torch.float32, device)
    info["k"] = K
    gen = torch.Generator().manual_seed(0)
    user_emb = (torch.randn(ds.n_users, d, generator=gen) * 0.1).to(device)
    item_emb = (torch.randn(ds.n_items, d, generator=gen) * 0.1).to(device)
    evaluator = Evaluator(ds.test_csr, excluded(ds), ks=(K,), chunk_size=1024, device=device)
    expected = None
    if provider == "ours_chunked":
        info.update(repr_bytes=min(evaluator.chunk_size, ds.n_users) * ds.n_items * 4,
                    repr=f"score buffer of {evaluator.chunk_size} users × n_items (fp32)")
        fn = lambda: evaluator.evaluate(user_emb, item_emb)  # noqa: E731
    else:
        needs = ds.n_users * ds.n_items * 5  # fp32 scores + bool relevance
        info.update(repr_bytes=needs, repr="n_users × n_items scores (fp32) + relevance (bool)")
        if needs > memory_budget(device):
            pytest.skip(not_run(info, needs, benchmark.name, what="dense score matrix"))
        exclude = keys(excluded(ds), ds.n_items, device)
        test = keys([ds.test_csr], ds.n_items, device)
        fn = lambda: dense_recall_ndcg(user_emb, item_emb, exclude, test)  # noqa: E731
        expected = evaluator.evaluate(user_emb, item_emb)

    def check(metrics):  # the naive computation agrees with the library's evaluator
        for key in (f"recall@{K}", f"ndcg@{K}"):
            assert math.isclose(metrics[key], expected[key], rel_tol=1e-4, abs_tol=1e-6), key

    slow = device.type == "cpu" and ds.n_users * ds.n_items > 1e8  # Gowalla on a CPU: seconds
    run_benchmark(benchmark, fn, info, device=device, check=check if expected else None,
                  warmup=not slow)


@pytest.mark.parametrize("provider", ["rank", "rejection"])
def test_negative_sampling(benchmark, provider, size, split_dataset, device):
    ds = split_dataset
    sampler = UniformNegativeSampler(ds.train_csr, device=device, seed=0, method=provider)
    train_users, train_items = ds.train_csr.pairs()
    info = base_info("negative_sampling", provider, size, sizes(ds), 0, torch.int64, device)
    info["samples"] = int(train_users.size)
    order = torch.randperm(train_users.size, generator=torch.Generator().manual_seed(0))
    users = torch.from_numpy(train_users)[order].to(device)
    positives = train_users * ds.n_items + train_items

    def check(neg):  # in range, and never a training pair of the user
        assert neg.shape == users.shape and int(neg.min()) >= 0 and int(neg.max()) < ds.n_items
        assert not np.isin(users.cpu().numpy() * ds.n_items + neg.cpu().numpy(), positives).any()

    run_benchmark(benchmark, lambda: sampler.sample(users), info, device=device, check=check)


def plain_parse(dataset):
    """The baseline: np.loadtxt (MovieLens) or a Python line split (Gowalla), nothing else."""
    folder = data_root() / dataset
    if dataset == "ml-latest-small":
        return np.loadtxt(folder / "ratings.csv", delimiter=",", skiprows=1)
    out = []
    for name in ("train.txt", "test.txt"):
        users, items = [], []
        with open(folder / name) as f:
            for line in f:
                ids = np.array(line.split(), dtype=np.int64)
                if ids.size > 1:
                    users.append(np.full(ids.size - 1, ids[0]))
                    items.append(ids[1:])
        out.append((np.concatenate(users), np.concatenate(items)))
    return out


@pytest.mark.parametrize("provider", ["gnn.load_dataset", "plain_parse"])
def test_load_ratings(benchmark, provider, size, split_dataset):
    cpu = torch.device("cpu")
    info = base_info("load_ratings", provider, size, sizes(split_dataset), 0, torch.float32, cpu)
    if provider == "plain_parse":
        info["what"] = "np.loadtxt (MovieLens) / Python line split (Gowalla), no remapping or split"
        fn = lambda: plain_parse(size)  # noqa: E731
    else:
        kwargs = {"download": False, "split": "given" if size == "gowalla" else "random"}
        info["what"] = f"load_dataset({size!r}, {kwargs}): parse, remap ids, split"
        fn = lambda: load_dataset(size, **kwargs)  # noqa: E731
    run_benchmark(benchmark, fn, info, device=cpu)
