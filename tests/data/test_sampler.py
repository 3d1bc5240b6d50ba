"""UniformNegativeSampler: exact (never a positive), uniform (chi-square), seeded, resumable."""
import io

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from gnn.data import PositiveSampler, UserItemCSR
from gnn.data.sampler import UniformNegativeSampler
from syncfree import forbid_sync

CONFIGS = [dict(method="rank"), dict(method="rank", sort_queries=False),
           dict(method="rejection"), dict(method="rejection", max_rounds=1), dict(method="rejection", max_rounds=0)]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def small_graph(seed, n_users=15, n_items=9):
    """Random positives with duplicates, plus a user with n_items - 1 positives and one with none."""
    rng = np.random.default_rng(seed)
    user = rng.integers(0, n_users, 60)
    item = rng.integers(0, n_items, 60)
    user[user == 1] = 2  # user 1 has no positives
    almost = np.delete(np.arange(n_items), rng.integers(n_items))  # user 0: all items but one
    user = np.concatenate([user, np.zeros(n_items - 1, np.int64), user[:10]])
    item = np.concatenate([item, almost, item[:10]])
    positives = [set(item[user == u].tolist()) for u in range(n_users)]
    return user, item, n_users, n_items, positives


def uniformity_pvalue(draws: np.ndarray, allowed: list[int], n_items: int) -> float:
    """Chi-square p-value of ``draws`` against the uniform law on ``allowed`` (0 if any draw is outside)."""
    counts = np.bincount(draws, minlength=n_items)
    if counts.sum() != counts[allowed].sum():
        return 0.0
    if len(allowed) == 1:
        return 1.0
    return chisquare(counts[allowed]).pvalue


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{v}" for v in c.values()))
@pytest.mark.parametrize("seed", range(4))
def test_never_a_positive_and_full_support_brute_force(seed, config):
    user, item, n_users, n_items, positives = small_graph(seed)
    sampler = UniformNegativeSampler(user, item, n_users, n_items, seed=seed, **config)
    users = torch.arange(n_users).repeat_interleave(300)
    draws = sampler.sample(users).numpy()
    for u in range(n_users):
        mine = set(draws[users.numpy() == u].tolist())
        # Every draw is a non-positive, and with 300 draws every non-positive shows up.
        assert mine == set(range(n_items)) - positives[u], u


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", ["rank", "rejection"])
def test_exact_on_a_larger_graph(method, device):
    rng = np.random.default_rng(5)
    n_users, n_items, m = 3000, 700, 30000
    user = rng.integers(0, n_users, m)
    item = np.minimum((rng.pareto(1.0, m) * 5).astype(np.int64), n_items - 1)  # popular items, many dupes
    sampler = UniformNegativeSampler(user, item, n_users, n_items, device=device, method=method)
    users = torch.from_numpy(rng.integers(0, n_users, 50000)).to(device)  # >= 16384: sorted path
    draws = sampler.sample(users)
    assert draws.device.type == device and draws.dtype == torch.int64
    keys = (users * n_items + draws).cpu().numpy()
    assert not np.isin(keys, user * n_items + item).any()
    assert draws.min() >= 0 and draws.max() < n_items


@pytest.mark.parametrize("method", ["rank", "rejection"])
def test_uniform_over_the_complement_chi_square(method):
    n_items = 12
    positives = {0: [0, 3, 4, 11], 1: list(range(1, 12)), 2: [], 3: [5, 5, 5], 4: list(range(0, 12, 2))}
    user = np.array([u for u, its in positives.items() for _ in its], dtype=np.int64)
    item = np.array([i for its in positives.values() for i in its], dtype=np.int64)
    sampler = UniformNegativeSampler(user, item, 5, n_items, seed=0, method=method)
    # >= 2000 expected per cell. The seed is fixed, so the test is deterministic; p > 1e-4 would
    # fail for about 1 seed in 10^4 per user under a fair sampler (a scan of 300 seeds gave
    # uniformly spread p-values), while the biases below give p < 1e-6.
    per_user = 24000
    users = torch.arange(5).repeat_interleave(per_user)
    draws = sampler.sample(users).numpy().reshape(5, per_user)
    for u, its in positives.items():
        allowed = sorted(set(range(n_items)) - set(its))
        assert uniformity_pvalue(draws[u], allowed, n_items) > 1e-4, (u, method)


def test_the_chi_square_check_rejects_biased_samplers():
    # The statistic above has the power to see the biases a buggy sampler would have.
    rng = np.random.default_rng(0)
    allowed = [1, 2, 5, 6, 7, 8, 9, 10]
    weights = np.ones(8)
    weights[3] = 1.1  # one item 10% too likely
    biased = rng.choice(allowed, size=24000, p=weights / weights.sum())
    assert uniformity_pvalue(biased, allowed, 12) < 1e-6
    # A modulo-biased draw (20 values mod 8: four items get 3/20, four get 2/20).
    modulo = np.array(allowed)[rng.integers(0, 20, 24000) % 8]
    assert uniformity_pvalue(modulo, allowed, 12) < 1e-6
    fair = rng.choice(allowed, size=24000)
    assert uniformity_pvalue(fair, allowed, 12) > 1e-4
    assert uniformity_pvalue(np.array([1, 2, 3]), allowed, 12) == 0.0  # a positive (3) was drawn


def test_seeded_and_independent_of_query_sorting():
    user, item, n_users, n_items, _ = small_graph(0)
    users = torch.randint(0, n_users, (20000,), generator=torch.Generator().manual_seed(0))  # >= 16384: sorted path
    draw = lambda **kw: UniformNegativeSampler(user, item, n_users, n_items, **kw).sample(users)
    assert torch.equal(draw(seed=1), draw(seed=1))
    assert not torch.equal(draw(seed=1), draw(seed=2))
    # Sorting the search keys is a speed trick only: the same stream either way.
    assert torch.equal(draw(seed=3, sort_queries=True), draw(seed=3, sort_queries=False))
    assert torch.equal(draw(seed=3, method="rejection", sort_queries=True),
                       draw(seed=3, method="rejection", sort_queries=False))


def test_duplicates_are_collapsed():
    user, item, n_users, n_items, _ = small_graph(1)
    pairs = np.unique(np.stack([user, item], 1), axis=0)
    with_dupes = UniformNegativeSampler(user, item, n_users, n_items, seed=4)
    deduped = UniformNegativeSampler(pairs[:, 0], pairs[:, 1], n_users, n_items, seed=4)
    assert with_dupes.nnz == deduped.nnz == len(pairs)
    assert torch.equal(with_dupes.degree, torch.bincount(torch.from_numpy(pairs[:, 0]), minlength=n_users))
    users = torch.arange(n_users).repeat(50)
    assert torch.equal(with_dupes.sample(users), deduped.sample(users))


@pytest.mark.parametrize("method", ["rank", "rejection"])
def test_state_dict_resumes_the_stream(method):
    user, item, n_users, n_items, _ = small_graph(2)
    users = torch.arange(n_users).repeat(40)
    sampler = UniformNegativeSampler(user, item, n_users, n_items, seed=9, method=method)
    sampler.sample(users)  # epoch 1
    buffer = io.BytesIO()
    torch.save(sampler.state_dict(), buffer)
    epochs_2_3 = [sampler.sample(users), sampler.sample(users)]
    # A fresh sampler (a resumed run) with another seed, restored from the checkpoint.
    resumed = UniformNegativeSampler(user, item, n_users, n_items, seed=0, method=method)
    buffer.seek(0)
    resumed.load_state_dict(torch.load(buffer))
    assert all(torch.equal(a, resumed.sample(users)) for a in epochs_2_3)


def test_state_dict_from_another_graph_is_refused():
    user, item, n_users, n_items, _ = small_graph(2)
    state = UniformNegativeSampler(user, item, n_users, n_items).state_dict()
    other = UniformNegativeSampler(user, item, n_users, n_items + 1)
    with pytest.raises(ValueError, match="n_items"):
        other.load_state_dict(state)


def test_sample_keeps_shape_and_accepts_numpy():
    user, item, n_users, n_items, positives = small_graph(3)
    sampler = UniformNegativeSampler(torch.from_numpy(user), torch.from_numpy(item), n_users, n_items)
    users = np.array([[0, 1, 2], [3, 4, 0]])
    draws = sampler.sample(users)
    assert draws.shape == (2, 3) and draws.dtype == torch.int64
    assert all(int(j) not in positives[int(u)] for u, j in zip(users.ravel(), draws.ravel()))
    assert sampler.sample(torch.zeros(0, dtype=torch.int64)).shape == (0,)


def test_users_with_every_item_are_refused():
    user = np.array([0, 2, 2, 2, 1, 3, 3, 3])
    item = np.array([0, 0, 1, 2, 1, 2, 1, 0])
    for args in [(user, item, 4, 3), (UserItemCSR.from_pairs(user, item, 4, 3),)]:
        with pytest.raises(ValueError) as e:
            UniformNegativeSampler(*args)
        # What, which users, what to do.
        assert "2 user(s) interacted with every one of the 3 items" in str(e.value)
        assert "user index 2, 3;" in str(e.value) and "drop these users" in str(e.value)


def test_bad_inputs():
    ok = np.array([0, 1])
    with pytest.raises(ValueError, match="item ids must lie in"):
        UniformNegativeSampler(ok, np.array([0, 5]), 2, 5)
    with pytest.raises(ValueError, match="user ids must lie in"):
        UniformNegativeSampler(np.array([-1, 0]), ok, 2, 5)
    with pytest.raises(ValueError, match="item must hold integer"):
        UniformNegativeSampler(ok, np.array([0.0, 1.0]), 2, 5)
    with pytest.raises(ValueError, match="same length"):
        UniformNegativeSampler(ok, np.array([0]), 2, 5)
    with pytest.raises(ValueError, match="user must be 1-D"):
        UniformNegativeSampler(ok.reshape(1, 2), ok, 2, 5)
    with pytest.raises(ValueError, match="n_items"):
        UniformNegativeSampler(ok, ok, 2, 0)
    with pytest.raises(ValueError, match="method"):
        UniformNegativeSampler(ok, ok, 2, 5, method="hash")
    sampler = UniformNegativeSampler(ok, ok, 2, 5)
    with pytest.raises(ValueError, match="users ids must lie in"):
        sampler.sample(torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="users must hold integer"):
        sampler.sample(torch.tensor([0.0]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_generator_and_state():
    user, item, n_users, n_items, positives = small_graph(0)
    sampler = UniformNegativeSampler(user, item, n_users, n_items, device="cuda", seed=1)
    assert sampler._gen.device.type == "cuda" and not sampler.sort_queries
    users = torch.arange(n_users, device="cuda").repeat(100)
    state = sampler.state_dict()
    first = sampler.sample(users)
    sampler.load_state_dict(state)
    assert torch.equal(first, sampler.sample(users))
    assert all(int(j) not in positives[int(u)] for u, j in zip(users.cpu(), first.cpu()))


def test_takes_the_datasets_csr_and_draws_what_the_pair_form_draws():
    user, item, n_users, n_items, positives = small_graph(4)
    csr = UserItemCSR.from_pairs(user, item, n_users, n_items)
    users = torch.arange(n_users).repeat(30)
    for method in ("rank", "rejection"):
        from_csr = UniformNegativeSampler(csr, seed=2, method=method)
        from_pairs = UniformNegativeSampler(user, item, n_users, n_items, seed=2, method=method)
        assert from_csr.train is csr and from_pairs.train == csr
        assert (from_csr.n_users, from_csr.n_items, from_csr.nnz) == (n_users, n_items, csr.nnz)
        assert torch.equal(from_csr.sample(users), from_pairs.sample(users))
    # check=False: the same stream, without the id check.
    a, b = UniformNegativeSampler(csr, seed=8), UniformNegativeSampler(csr, seed=8)
    assert torch.equal(a.sample(users), b.sample(users, check=False))


def test_the_two_argument_forms_do_not_mix():
    user, item, n_users, n_items, _ = small_graph(0)
    csr = UserItemCSR.from_pairs(user, item, n_users, n_items)
    with pytest.raises(TypeError, match="not both"):
        UniformNegativeSampler(csr, item, n_users, n_items)
    with pytest.raises(TypeError, match="pass a UserItemCSR"):
        UniformNegativeSampler(user, item)
    with pytest.raises(ValueError, match="n_users must be a positive integer"):
        UniformNegativeSampler(UserItemCSR.from_pairs([], [], 0, 3))


@pytest.mark.parametrize("method", ["rank", "rejection"])
def test_k_negatives_per_entry_are_exact_uniform_and_independent(method):
    # Shape (n, k); every draw a non-positive of its own entry's user; each column is uniform over
    # the complement (chi-square), and the k draws of an entry are independent of each other: the
    # pair (first, second) is uniform over complement x complement.
    n_items = 12
    positives = {0: [0, 3, 4, 11], 1: list(range(1, 12)), 2: [], 3: list(range(0, 12, 2))}
    user = np.array([u for u, its in positives.items() for _ in its], dtype=np.int64)
    item = np.array([i for its in positives.values() for i in its], dtype=np.int64)
    sampler = UniformNegativeSampler(user, item, 4, n_items, seed=1, method=method)
    per_user, k = 24000, 3
    users = torch.arange(4).repeat_interleave(per_user)
    draws = sampler.sample(users, k=k)
    assert draws.shape == (4 * per_user, k) and draws.dtype == torch.int64
    draws = draws.numpy().reshape(4, per_user, k)
    for u, its in positives.items():
        allowed = sorted(set(range(n_items)) - set(its))
        for c in range(k):
            assert uniformity_pvalue(draws[u, :, c], allowed, n_items) > 1e-4, (u, c)
        if len(allowed) > 1:
            pairs = draws[u, :, 0] * n_items + draws[u, :, 1]
            cells = [a * n_items + b for a in allowed for b in allowed]
            assert uniformity_pvalue(pairs, cells, n_items * n_items) > 1e-4, u


def test_k_negatives_follow_the_stream_and_the_shape_of_users():
    user, item, n_users, n_items, positives = small_graph(4)
    users = torch.randint(0, n_users, (3, 50), generator=torch.Generator().manual_seed(0))
    one = UniformNegativeSampler(user, item, n_users, n_items, seed=7)
    many = UniformNegativeSampler(user, item, n_users, n_items, seed=7)
    # k=1 draws what the single-negative call draws; k=4 draws what sampling every user 4 times
    # in a row draws (the entry's k negatives are consecutive draws of the stream).
    assert torch.equal(many.sample(users, k=1), one.sample(users).unsqueeze(-1))
    four = many.sample(users, k=4)
    assert four.shape == (3, 50, 4)
    assert torch.equal(four, one.sample(users.unsqueeze(-1).expand(3, 50, 4)))
    assert all(int(j) not in positives[int(u)]
               for u, row in zip(users.reshape(-1), four.reshape(-1, 4)) for j in row)
    assert many.sample(torch.zeros(0, dtype=torch.int64), k=5).shape == (0, 5)


def test_bad_k_is_refused():
    sampler = UniformNegativeSampler(np.array([0, 1]), np.array([0, 1]), 2, 5)
    for bad in (0, -1, 2.0, True, "3"):
        with pytest.raises(ValueError, match="k must be None or an int >= 1"):
            sampler.sample(torch.tensor([0, 1]), k=bad)


def test_several_negatives_per_entry_are_drawn_without_a_sync():
    rng = np.random.default_rng(2)
    csr = UserItemCSR.from_pairs(rng.integers(0, 60, 500), rng.integers(0, 37, 500), 60, 37)
    users, _ = PositiveSampler(csr, mode="user").epoch(torch.Generator().manual_seed(0))
    with forbid_sync():
        neg = UniformNegativeSampler(csr, seed=5).sample(users, k=6, check=False)
    assert torch.equal(neg, UniformNegativeSampler(csr, seed=5).sample(users, k=6))
    keys = (users.unsqueeze(1) * csr.n_items + neg).numpy()
    assert not np.isin(keys, csr.users() * csr.n_items + csr.indices).any()
