"""Sampling inside a training step never waits for the device: checked op by op on the CPU
(tests/data/syncfree.py), and the pure parts compile with torch.compile(fullgraph=True)."""
import numpy as np
import pytest
import torch

from gnn.data import PositiveSampler, UniformNegativeSampler, UserItemCSR
from gnn.data.draws import random_bits
from syncfree import SyncError, forbid_sync


def graph(seed=0, n_users=60, n_items=37, m=500):
    rng = np.random.default_rng(seed)
    return UserItemCSR.from_pairs(rng.integers(0, n_users, m), rng.integers(0, n_items, m), n_users, n_items)


@pytest.mark.parametrize("n", [7, 20000])  # below and above the sorted-query threshold
@pytest.mark.parametrize("sort_queries", [True, False])
def test_a_whole_batch_is_drawn_without_a_sync(n, sort_queries):
    csr = graph()
    negatives = UniformNegativeSampler(csr, seed=3, sort_queries=sort_queries)
    expected = UniformNegativeSampler(csr, seed=3, sort_queries=sort_queries)
    for mode in ("pair", "user"):
        positives = PositiveSampler(csr, mode=mode)
        g = torch.Generator().manual_seed(1)
        with forbid_sync():
            users, items = positives.epoch(g)
            batch = users[:n] if n <= len(users) else users.repeat(n // len(users) + 1)[:n]
            neg = negatives.sample(batch, check=False)
        # Same draws as the checked call, and exact: never a training pair.
        assert torch.equal(neg, expected.sample(batch))
        keys = (batch * csr.n_items + neg).numpy()
        assert not np.isin(keys, csr.users() * csr.n_items + csr.indices).any()


def test_the_sync_check_can_fail():
    # The checked call and the rejection method synchronise; forbid_sync must see it.
    csr = graph()
    users = torch.arange(csr.n_users)
    with pytest.raises(SyncError, match="_local_scalar_dense"):
        with forbid_sync():
            UniformNegativeSampler(csr).sample(users)  # the id check reads min and max
    with pytest.raises(SyncError):
        with forbid_sync():
            UniformNegativeSampler(csr, method="rejection").sample(users, check=False)
    with pytest.raises(SyncError, match="tolist"):
        with forbid_sync():
            users.tolist()


def test_pure_parts_compile_fullgraph_and_match_eager():
    # The generator stays outside (dynamo does not trace torch.Generator); what turns the random
    # bits into ids is captured whole. aot_eager traces like inductor without the C++ build.
    torch._dynamo.reset()
    csr = graph(1)
    negatives = UniformNegativeSampler(csr)
    positives = PositiveSampler(csr, mode="user")
    g = torch.Generator().manual_seed(0)
    users = torch.randint(0, csr.n_users, (20000,), generator=g)
    bits = random_bits(users.shape, g, "cpu")
    neg = torch.compile(negatives.negatives_from_bits, fullgraph=True, backend="aot_eager")
    assert torch.equal(neg(users, bits), negatives.negatives_from_bits(users, bits))
    bits = random_bits((2, 999), g, "cpu")
    pos = torch.compile(positives.pairs_from_bits, fullgraph=True, backend="aot_eager")
    assert all(torch.equal(a, b) for a, b in zip(pos(bits), positives.pairs_from_bits(bits)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("mode", ["pair", "user"])
def test_cuda_epoch_and_negatives_raise_no_sync_error(mode):
    # On the device CUDA itself reports any synchronising call in "error" mode.
    csr = graph(2)
    positives = PositiveSampler(csr, mode=mode, device="cuda")
    negatives = UniformNegativeSampler(csr, device="cuda", seed=0)
    g = torch.Generator(device="cuda").manual_seed(0)
    positives.epoch(g)  # warm-up: first calls may allocate and load kernels
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        users, items = positives.epoch(g)
        neg = negatives.sample(users, check=False)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    keys = (users * csr.n_items + neg).cpu().numpy()
    assert not np.isin(keys, csr.users() * csr.n_items + csr.indices).any()
