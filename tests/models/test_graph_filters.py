"""gnn.models.graph_filters: GF-CF and BSPM against dense float64 references written from the
papers (tests/models/filter_graphs.py), block-size independence, evaluation through the one
evaluator, recommend, and argument errors (issue 18)."""
import math

import numpy as np
import pytest

from gnn.data import UserItemCSR
from gnn.evaluation.reference import ranking_metrics
from gnn.models.graph_filters import BSPM, FILTERS, GFCF
from filter_graphs import (bspm_reference, gapped_rank, gfcf_reference, power_law_graph,
                           split_graph)

EXACT = dict(dtype="float64", power_iters=40)  # float64 and a converged SVD: exact comparisons
# odd sizes; more users than items and fewer; more users than one panel (PANEL = 64)
SIZES = [(41, 57, 0), (151, 23, 1), (19, 33, 2)]


def all_users(model):
    return model.score(np.arange(model.n_users))


def test_registry_names():
    assert FILTERS == {"gfcf": GFCF, "bspm": BSPM}


# -- the filters against their dense definitions ---------------------------------------------
@pytest.mark.parametrize("svd", ["randomized", "scipy"])
@pytest.mark.parametrize("n_users,n_items,seed", SIZES)
def test_gfcf_matches_dense_reference(svd, n_users, n_items, seed):
    train, R = power_law_graph(n_users, n_items, seed)
    k = gapped_rank(R)
    model = GFCF(alpha=0.3, k=k, svd=svd, **EXACT).fit(train)
    np.testing.assert_allclose(all_users(model), gfcf_reference(R, 0.3, k), rtol=1e-9, atol=1e-11)


def test_gfcf_float32_close_to_reference():
    train, R = power_law_graph(seed=3)
    k = gapped_rank(R)
    model = GFCF(alpha=0.7, k=k, power_iters=40).fit(train)
    got = all_users(model)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, gfcf_reference(R, 0.7, k), rtol=1e-4, atol=1e-5)


def test_gfcf_without_ideal_part_is_the_linear_filter_and_takes_no_svd():
    train, R = power_law_graph(seed=4)
    model = GFCF(alpha=0.0, dtype="float64").fit(train)  # k = 256 > this graph: never used
    assert model.singular_values is None and model.svd_seconds is None
    np.testing.assert_allclose(all_users(model), gfcf_reference(R, 0.0, 1), rtol=1e-12, atol=1e-14)


BSPM_SETTINGS = [
    {},                                                        # the paper's Gowalla settings
    {"sharpen_solver": "euler", "sharpen_time": 1.3, "sharpen_steps": 3},
    {"blur_time": 0.7, "blur_steps": 3, "sharpen_steps": 2},
    {"final_sharpening": False, "beta": 0.5},
    {"sharpen_time": 0.0},                                     # sharpening off
    {"beta": 0.0},                                             # no ideal part
]


@pytest.mark.parametrize("settings", BSPM_SETTINGS, ids=lambda s: ",".join(s) or "paper")
@pytest.mark.parametrize("n_users,n_items,seed", SIZES)
def test_bspm_matches_dense_ode_steps(settings, n_users, n_items, seed):
    train, R = power_law_graph(n_users, n_items, seed)
    k = gapped_rank(R)
    model = BSPM(k=k, **settings, **EXACT).fit(train)
    ref_args = {"blur_time": 1.0, "blur_steps": 1, "sharpen_time": 2.5, "sharpen_steps": 1,
                "solver": "rk4", "final_sharpening": True, "beta": 0.2}
    ref_args.update({("solver" if key == "sharpen_solver" else key): value
                     for key, value in settings.items()})
    beta = ref_args.pop("beta")
    np.testing.assert_allclose(all_users(model), bspm_reference(R, beta, k, **ref_args),
                               rtol=1e-9, atol=1e-11)


def test_rk4_step_is_the_taylor_polynomial_of_exp():
    model = BSPM(sharpen_time=2.5)
    tau = 2.5
    np.testing.assert_allclose(model.sharpen_polynomial(),
                               [(-tau) ** j / math.factorial(j) for j in range(5)], rtol=1e-15)
    np.testing.assert_allclose(BSPM(sharpen_solver="euler", sharpen_time=2.0,
                                    sharpen_steps=2).sharpen_polynomial(), [1, -2, 1])


def test_isolated_users_and_items():
    train, R = power_law_graph(seed=5)  # users 2, 7 and items 3, 56 have no interaction
    for model in (GFCF(k=gapped_rank(R), **EXACT), BSPM(k=gapped_rank(R), **EXACT)):
        scores = all_users(model.fit(train))
        assert np.isfinite(scores).all()
        assert not scores[[2, 7]].any()            # nothing to propagate from
        assert not scores[:, [3, 56]].any()         # D_I^{1/2} = 0 and no co-occurrence


# -- blocks, evaluation, recommend -------------------------------------------------------------
@pytest.mark.parametrize("cls", [GFCF, BSPM])
def test_block_size_changes_nothing(cls):
    train, test = split_graph(power_law_graph(150, 57, seed=6)[1], seed=6)
    reference = None
    for block in (1, 7, 65, 1000):
        model = cls(k=5, block_users=block, **EXACT).fit(train)
        assert model.block_size == block
        got = (all_users(model), model.evaluate(test, ks=(3, 10)),
               model.recommend(np.arange(train.n_users), k=4))
        if reference is None:
            reference = got
            continue
        np.testing.assert_allclose(got[0], reference[0], rtol=1e-12, atol=1e-14)
        assert got[1] == pytest.approx(reference[1], abs=1e-12)
        np.testing.assert_array_equal(got[2], reference[2])


def test_block_size_follows_the_memory_budget():
    train, _ = power_law_graph()
    model = GFCF(k=3, memory_mb=1).fit(train)
    per_user = 4 * (train.n_items + 3)
    assert model.block_size == 2**20 // per_user
    assert GFCF(k=3, memory_mb=1e-9).fit(train).block_size == 1


@pytest.mark.parametrize("cls", [GFCF, BSPM])
def test_evaluate_matches_the_dense_oracle(cls):
    train, test = split_graph(power_law_graph(80, 45, seed=7)[1], seed=7)
    model = cls(k=6, block_users=13).fit(train)
    expected = ranking_metrics(all_users(model), train, test, ks=(5, 20))
    got = model.evaluate(test, ks=(5, 20))
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key] == pytest.approx(expected[key], abs=1e-12), key
    nothing = UserItemCSR.from_pairs([], [], *train.shape)
    assert model.evaluate(test, exclude=[nothing], ks=(5,)) == pytest.approx(
        ranking_metrics(all_users(model), nothing, test, ks=(5,)), abs=1e-12)


def test_recommend_excludes_seen_items_breaks_ties_by_id_and_pads():
    train, R = power_law_graph(30, 21, seed=8, mean_degree=8)
    model = GFCF(k=4, block_users=4, **EXACT).fit(train)
    scores = all_users(model)
    top = model.recommend(np.arange(train.n_users), k=train.n_items + 2)
    for u in range(train.n_users):
        seen = set(train.items_of(u).tolist())
        unseen = sorted(set(range(train.n_items)) - seen, key=lambda i: (-scores[u, i], i))
        assert top[u, :len(unseen)].tolist() == unseen
        assert (top[u, len(unseen):] == -1).all()
    everything = UserItemCSR.from_pairs(*np.nonzero(np.ones_like(R)), *R.shape)
    assert (model.recommend([0, 5], k=3, exclude=everything) == -1).all()


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls,kwargs,message", [
    (GFCF, {"alpha": -0.1}, r"GFCF\(\): alpha must be a finite number >= 0"),
    (GFCF, {"alpha": float("nan")}, r"alpha must be a finite number"),
    (GFCF, {"alpha": "0.3"}, r"alpha must be a finite number"),
    (GFCF, {"k": 0}, r"GFCF\(\): k must be an int >= 1"),
    (GFCF, {"k": 2.5}, r"k must be an int"),
    (GFCF, {"k": True}, r"k must be an int"),
    (GFCF, {"svd": "lanczos"}, r"svd must be one of \['randomized', 'scipy'\]"),
    (GFCF, {"dtype": "float16"}, r"dtype must be one of"),
    (GFCF, {"power_iters": -1}, r"power_iters must be an int >= 0"),
    (GFCF, {"memory_mb": 0}, r"memory_mb must be > 0"),
    (GFCF, {"block_users": 0}, r"block_users must be an int >= 1"),
    (BSPM, {"beta": -1}, r"BSPM\(\): beta must be a finite number >= 0"),
    (BSPM, {"sharpen_time": float("inf")}, r"sharpen_time must be a finite number"),
    (BSPM, {"sharpen_steps": 0}, r"sharpen_steps must be an int >= 1"),
    (BSPM, {"blur_steps": 1.5}, r"blur_steps must be an int >= 1"),
    (BSPM, {"sharpen_solver": "dopri5"}, r"sharpen_solver must be one of \['euler', 'rk4'\]"),
    (BSPM, {"final_sharpening": 1}, r"final_sharpening must be True or False"),
])
def test_bad_arguments(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_bad_use():
    train, _ = power_law_graph()
    with pytest.raises(RuntimeError, match="call fit"):
        GFCF().score([0])
    with pytest.raises(TypeError, match="UserItemCSR"):
        GFCF().fit(np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 41\)"):
        GFCF(k=41).fit(train)
    model = GFCF(k=3).fit(train)
    with pytest.raises(ValueError, match=r"users must lie in \[0, 41\)"):
        model.score([0, 41])
    with pytest.raises(ValueError, match="users must be integer ids"):
        model.score([0.5])
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        model.recommend([0], k=0)
    with pytest.raises(ValueError, match=r"exclude covers \(3, 3\) users x items, but the model has"):
        model.recommend([0], exclude=UserItemCSR.from_pairs([0], [0], 3, 3))
    assert repr(model).startswith("GFCF(k=3, svd='randomized'") and "alpha=0.3" in repr(model)
