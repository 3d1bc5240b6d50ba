"""The non-kernel parts of an epoch: full-ranking evaluation, negative sampling, loading ratings.

  evaluate_all_users  gnn.evaluate.evaluate_ranking (user chunks) against a dense score matrix
                      (all users × all items at once; "OOM (needs X GB)" where it does not fit),
                      random d-dim embeddings, training items excluded, K = 20
  negative_sampling   one epoch of negatives (one per training pair) with
                      gnn.data.sampler.UniformNegativeSampler, methods "rank" and "rejection"
  load_ratings        gnn.data.load_dataset against a plain parse of the same file
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.conftest import (base_info, data_root, embedding_dim, interactions, memory_budget,
                            not_run, optional, read_gowalla, run_benchmark, size_preset)

K = 20
REAL = ["ml-latest-small", "gowalla"]


class _Sizes:
    """Graph-free stand-in for an Adjacency in base_info (N, nnz of the bipartite graph)."""

    def __init__(self, n_users, n_items, n_pairs):
        self.n_users, self.n_items = n_users, n_items
        self.n_nodes, self.nnz = n_users + n_items, 2 * n_pairs


def real_sizes(config):
    return REAL if size_preset(config) != "tiny" else REAL[:1]


def pytest_generate_tests(metafunc):  # noqa: D103 - module-level parametrisation of `dataset`
    if "dataset" in metafunc.fixturenames:
        names = real_sizes(metafunc.config)
        metafunc.parametrize("dataset", names, ids=names, scope="module")


# --------------------------------------------------------------------------- splits
def _unique_pairs(user, item, n_items):
    keys = np.unique(user * n_items + item)
    return keys // n_items, keys % n_items


@pytest.fixture(scope="module")
def split(dataset):
    """``(train_user, train_item, test_user, test_item, n_users, n_items)``.

    gowalla: the given NGCF train/test split; ml-latest-small: a seeded 80/20 random split of
    the distinct (user, movie) pairs.
    """
    if dataset == "gowalla":
        tu, ti = read_gowalla("train.txt")
        su, si = read_gowalla("test.txt")
        n_users = int(max(tu.max(), su.max())) + 1
        n_items = int(max(ti.max(), si.max())) + 1
        tu, ti = _unique_pairs(tu, ti, n_items)
        su, si = _unique_pairs(su, si, n_items)
        return tu, ti, su, si, n_users, n_items
    user, item, n_users, n_items = interactions(dataset)
    user, item = _unique_pairs(user, item, n_items)
    test = np.random.default_rng(0).random(user.size) < 0.2
    return user[~test], item[~test], user[test], item[test], n_users, n_items


# --------------------------------------------------------------------------- evaluation
def dense_recall_ndcg(user_emb, item_emb, train_rows, train_cols, test_rows, test_cols, k=K):
    """recall@k / ndcg@k from the full (n_users × n_items) score matrix: the memory-naive way."""
    scores = user_emb @ item_emb.T
    scores[train_rows, train_cols] = float("-inf")
    top = torch.topk(scores, k, dim=1).indices
    relevant = torch.zeros_like(scores, dtype=torch.bool)
    relevant[test_rows, test_cols] = True
    hits = relevant.gather(1, top).float()
    n_test = relevant.sum(1)
    users = n_test > 0
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, device=scores.device, dtype=torch.float32))
    dcg = (hits * discount).sum(1)
    idcg = torch.cumsum(discount, 0)[(n_test.clamp(1, k) - 1)]
    recall = (hits.sum(1) / n_test.clamp(min=1))[users].mean()
    ndcg = (dcg / idcg)[users].mean()
    return {f"recall@{k}": float(recall), f"ndcg@{k}": float(ndcg)}


@pytest.mark.parametrize("provider", ["ours_chunked", "dense_scores"])
def test_evaluate_all_users(benchmark, provider, dataset, split, device):
    tu, ti, su, si, n_users, n_items = split
    d = embedding_dim()
    info = base_info("evaluate_all_users", provider, dataset, _Sizes(n_users, n_items, tu.size),
                     d, torch.float32, device)
    info["k"] = K
    gen = torch.Generator().manual_seed(0)
    user_emb = (torch.randn(n_users, d, generator=gen) * 0.1).to(device)
    item_emb = (torch.randn(n_items, d, generator=gen) * 0.1).to(device)
    from gnn.csr import csr_from_pairs  # noqa: PLC0415 - part of gnn, always present with evaluate

    evaluate_ranking = optional("gnn.evaluate", "evaluate_ranking")
    train_csr = csr_from_pairs(tu, ti, n_users)
    test_csr = csr_from_pairs(su, si, n_users)
    check = None
    if provider == "ours_chunked":
        chunk = 1024
        info["repr_bytes"] = min(chunk, n_users) * n_items * 4
        info["repr"] = f"score buffer of {chunk} users × n_items (fp32)"
        fn = lambda: evaluate_ranking(user_emb, item_emb, *test_csr,  # noqa: E731
                                      exclude=[train_csr], ks=(K,), chunk_size=chunk)
    else:
        needs = n_users * n_items * 5  # fp32 scores + bool relevance
        info["repr_bytes"] = needs
        info["repr"] = "full n_users × n_items scores (fp32) + relevance (bool)"
        if needs > memory_budget(device):
            not_run(benchmark, info, needs, what="dense score matrix")
        t = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
        rows = [t(a) for a in (tu, ti, su, si)]
        fn = lambda: dense_recall_ndcg(user_emb, item_emb, *rows)  # noqa: E731
        expected = evaluate_ranking(user_emb, item_emb, *test_csr, exclude=[train_csr], ks=(K,))

        def check(metrics):  # the naive computation agrees with the library's evaluator
            for key in (f"recall@{K}", f"ndcg@{K}"):
                assert math.isclose(metrics[key], expected[key], rel_tol=1e-4, abs_tol=1e-6), key

    slow = device.type == "cpu" and n_users * n_items > 1e8  # Gowalla on a CPU: seconds per call
    run_benchmark(benchmark, fn, info, device=device, check=check, warmup=not slow)


# --------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("provider", ["rank", "rejection"])
def test_negative_sampling(benchmark, provider, dataset, split, device):
    tu, ti, _, _, n_users, n_items = split
    sampler_mod = optional("gnn.data.sampler", "UniformNegativeSampler")
    sampler = sampler_mod(tu, ti, n_users, n_items, device=device, seed=0, method=provider)
    info = base_info("negative_sampling", provider, dataset, _Sizes(n_users, n_items, tu.size),
                     0, torch.int64, device)
    info["samples"] = int(tu.size)
    users = torch.from_numpy(tu).to(device)[torch.randperm(tu.size, generator=torch.Generator().manual_seed(0)).to(device)]
    positives = set((tu * n_items + ti).tolist()) if tu.size <= 200_000 else None

    def check(neg):
        assert neg.shape == users.shape and int(neg.min()) >= 0 and int(neg.max()) < n_items
        if positives is not None:
            keys = (users.cpu().numpy() * n_items + neg.cpu().numpy()).tolist()
            assert not positives.intersection(keys)

    run_benchmark(benchmark, lambda: sampler.sample(users), info, device=device, check=check)


# --------------------------------------------------------------------------- loading
def _plain_parse(dataset):
    root = data_root()
    if dataset == "ml-latest-small":
        return np.loadtxt(root / dataset / "ratings.csv", delimiter=",", skiprows=1)
    return read_gowalla.__wrapped__("train.txt"), read_gowalla.__wrapped__("test.txt")


@pytest.mark.parametrize("provider", ["gnn.data.load_dataset", "plain_parse"])
def test_load_ratings(benchmark, provider, dataset, split):
    tu, _, _, _, n_users, n_items = split
    info = base_info("load_ratings", provider, dataset, _Sizes(n_users, n_items, tu.size), 0,
                     torch.float32, torch.device("cpu"))
    if provider == "plain_parse":
        info["what"] = "np.loadtxt (MovieLens) / Python line split (Gowalla), no remapping or split"
        fn = lambda: _plain_parse(dataset)  # noqa: E731
    else:
        load_dataset = optional("gnn.data", "load_dataset")
        kwargs = {"download": False}
        if dataset == "gowalla":
            kwargs["split"] = "given"
        info["what"] = f"load_dataset({dataset!r}, {kwargs}): parse, remap ids, split"
        fn = lambda: load_dataset(dataset, root=data_root(), **kwargs)  # noqa: E731
    run_benchmark(benchmark, fn, info, device=torch.device("cpu"))
