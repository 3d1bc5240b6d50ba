"""Per-user splits: a partition of the indices, seeded, the documented small-user rule, order."""
import numpy as np
import pytest
from scipy.stats import chisquare

from gnn.data.splits import split_leave_one_out, split_random, split_sizes, split_temporal

N_USERS = 40


def interaction_log(seed=0, n_users=N_USERS):
    """Users with 0..n_users-1 interactions (so 0, 1, 2, 3 and large ones), shuffled, plus timestamps."""
    rng = np.random.default_rng(seed)
    user = rng.permutation(np.repeat(np.arange(n_users), np.arange(n_users)))
    timestamp = rng.integers(0, 50, user.size)  # few distinct values: many ties
    return user, timestamp


def all_splits(user, timestamp, seed=0):
    return {
        "random": split_random(user, N_USERS, seed=seed),
        "random2": split_random(user, N_USERS, ratios=(0.7, 0.3), seed=seed),
        "temporal": split_temporal(user, timestamp, N_USERS),
        "loo_time": split_leave_one_out(user, N_USERS, timestamp=timestamp),
        "loo_random": split_leave_one_out(user, N_USERS, seed=seed),
        "loo_novalid": split_leave_one_out(user, N_USERS, seed=seed, validation=False),
    }


def per_user_counts(user, parts):
    return [np.bincount(user[idx], minlength=N_USERS) for idx in parts]


@pytest.mark.parametrize("kind", ["random", "random2", "temporal", "loo_time", "loo_random", "loo_novalid"])
def test_split_is_a_sorted_partition(kind):
    user, timestamp = interaction_log()
    parts = all_splits(user, timestamp)[kind]
    assert len(parts) == 3
    for idx in parts:
        assert idx.dtype == np.int64 and idx.ndim == 1
        assert np.all(np.diff(idx) > 0)  # sorted, no repeats
    together = np.concatenate(parts)
    assert together.size == user.size  # disjoint ...
    assert np.array_equal(np.sort(together), np.arange(user.size))  # ... and complete


def test_split_sizes_rule_table():
    # (n_train, n_valid, n_test) for n = 0..5, 10, 14, 15 with 0.8/0.1/0.1 (module docstring).
    n = np.array([0, 1, 2, 3, 4, 5, 10, 14, 15])
    got = np.stack(split_sizes(n, (0.8, 0.1, 0.1)), axis=1).tolist()
    assert got == [[0, 0, 0], [1, 0, 0], [1, 0, 1], [1, 1, 1], [2, 1, 1], [3, 1, 1],
                   [8, 1, 1], [12, 1, 1], [11, 2, 2]]
    # Two ratios, or a zero validation ratio: nothing in validation, test still >= 1 from n = 2.
    for ratios in [(0.8, 0.2), (0.8, 0.0, 0.2)]:
        got = np.stack(split_sizes(np.array([1, 2, 3, 7, 10]), ratios), axis=1).tolist()
        assert got == [[1, 0, 0], [1, 0, 1], [2, 0, 1], [6, 0, 1], [8, 0, 2]]
    # A large test ratio never empties train.
    got = np.stack(split_sizes(np.array([2, 3, 4]), (0.1, 0.45, 0.45)), axis=1).tolist()
    assert got == [[1, 0, 1], [1, 1, 1], [1, 1, 2]]


@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.1), (0.6, 0.2, 0.2), (0.7, 0.3), (0.9, 0.0, 0.1)])
def test_realised_sizes_follow_the_rule(ratios):
    user, timestamp = interaction_log()
    expected = split_sizes(np.bincount(user, minlength=N_USERS), ratios)
    for parts in (split_random(user, N_USERS, ratios, seed=3), split_temporal(user, timestamp, N_USERS, ratios)):
        for got, want in zip(per_user_counts(user, parts), expected):
            assert np.array_equal(got, want)


def test_single_interaction_users_stay_in_train_and_ratios_hold_for_large_users():
    user = np.concatenate([np.zeros(1000, np.int64), [1], [2, 2]])
    train, valid, test = split_random(user, 3, (0.8, 0.1, 0.1), seed=0)
    counts = per_user_counts(user, (train, valid, test))
    assert [c[0] for c in counts] == [800, 100, 100]
    assert [c[1] for c in counts] == [1, 0, 0]
    assert [c[2] for c in counts] == [1, 0, 1]


def test_random_split_is_seeded():
    user, _ = interaction_log()
    a, b, c = (split_random(user, N_USERS, seed=s) for s in (7, 7, 8))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[2], c[2])
    a, b, c = (split_leave_one_out(user, N_USERS, seed=s) for s in (7, 7, 8))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[2], c[2])


def test_random_split_picks_each_position_equally_often():
    # 4000 users with 10 interactions each: the test item's position inside its user is uniform.
    n_users, n = 4000, 10
    user = np.repeat(np.arange(n_users), n)
    _, _, test = split_random(user, n_users, (0.8, 0.1, 0.1), seed=0)
    assert test.size == n_users
    position_counts = np.bincount(test % n, minlength=n)
    assert chisquare(position_counts).pvalue > 1e-3


def test_temporal_split_orders_by_time_within_each_user():
    user, timestamp = interaction_log(seed=1)
    train, valid, test = split_temporal(user, timestamp, N_USERS)
    # Order key (time, input position): every train < every valid < every test, per user.
    key = timestamp * user.size + np.arange(user.size)
    for u in range(N_USERS):
        parts = [key[idx[user[idx] == u]] for idx in (train, valid, test)]
        nonempty = [p for p in parts if p.size]
        for older, newer in zip(nonempty, nonempty[1:]):
            assert older.max() < newer.min()


def test_temporal_ties_break_by_input_position():
    user = np.zeros(10, np.int64)
    timestamp = np.full(10, 5)
    train, valid, test = split_temporal(user, timestamp, 1)
    assert train.tolist() == list(range(8)) and valid.tolist() == [8] and test.tolist() == [9]
    # Later timestamps win over position.
    timestamp = np.array([9, 0, 0, 0, 0, 0, 0, 0, 0, 8])
    train, valid, test = split_temporal(user, timestamp, 1)
    assert test.tolist() == [0] and valid.tolist() == [9]


def test_leave_one_out_picks_the_latest():
    user, _ = interaction_log(seed=2)
    timestamp = np.random.default_rng(0).permutation(user.size)  # distinct times
    train, valid, test = split_leave_one_out(user, N_USERS, timestamp=timestamp)
    counts = np.bincount(user, minlength=N_USERS)
    assert np.array_equal(np.bincount(user[test], minlength=N_USERS), (counts >= 2).astype(int))
    assert np.array_equal(np.bincount(user[valid], minlength=N_USERS), (counts >= 3).astype(int))
    for u in np.flatnonzero(counts >= 3):
        mine = np.flatnonzero(user == u)
        by_time = mine[np.argsort(timestamp[mine])]
        assert test[user[test] == u].tolist() == [by_time[-1]]
        assert valid[user[valid] == u].tolist() == [by_time[-2]]
    _, valid, test2 = split_leave_one_out(user, N_USERS, timestamp=timestamp, validation=False)
    assert valid.size == 0 and np.array_equal(test2, test)


def test_empty_log():
    for parts in (split_random(np.zeros(0, np.int64), 3), split_temporal([], [], 3),
                  split_leave_one_out(np.zeros(0, np.int64), 0)):
        assert [p.size for p in parts] == [0, 0, 0]


@pytest.mark.parametrize("ratios", [(0.8, 0.1), (0.5, 0.5, 0.5, -0.5), (0.0, 0.5, 0.5), (1.2, -0.1, -0.1),
                                    (0.8,), (0.8, float("nan"), 0.2)])
def test_bad_ratios(ratios):
    with pytest.raises(ValueError, match="ratios"):
        split_random(np.zeros(4, np.int64), 1, ratios)


def test_bad_inputs():
    with pytest.raises(ValueError, match="user ids must lie in"):
        split_random(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="user ids must lie in"):
        split_leave_one_out(np.array([-1, 0]), 3)
    with pytest.raises(ValueError, match="integer"):
        split_random(np.array([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match="1-D"):
        split_random(np.zeros((2, 2), np.int64), 3)
    with pytest.raises(ValueError, match="timestamp must have shape"):
        split_temporal(np.array([0, 1]), np.array([1]), 3)
    with pytest.raises(ValueError, match="NaN"):
        split_temporal(np.array([0, 1]), np.array([1.0, np.nan]), 3)
