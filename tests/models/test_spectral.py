"""gnn.models.spectral: R̃ and its products against dense float64, the randomized and ARPACK
truncated SVDs against numpy's SVD, and the row-split SpMM (issue 18)."""
import numpy as np
import pytest
import torch

from gnn.models.spectral import PANEL, SpectralGraph, inverse_sqrt, randomized_svd, scipy_svd
from filter_graphs import gapped_rank, normalized, power_law_graph, top_right_singular


def decaying_graph(seed=0):
    """A graph whose spectrum decays like real interaction data (power-law degrees)."""
    return power_law_graph(150, 97, seed=seed, mean_degree=9)


def test_inverse_sqrt_is_zero_for_isolated_nodes():
    np.testing.assert_array_equal(inverse_sqrt(np.array([4.0, 0.0, 1.0])), [0.5, 0.0, 1.0])


@pytest.fixture
def threads(request):
    """Runs the test with torch set to ``request.param`` threads, restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2, 3], indirect=True)
def test_products_match_dense(threads):
    train, R = power_law_graph(seed=1)
    graph = SpectralGraph(train, dtype="float64")
    Rn, d_item = normalized(R)
    np.testing.assert_allclose(graph.Rn.toarray(), Rn, rtol=1e-15)
    np.testing.assert_array_equal(graph.item_degree, d_item)
    x = torch.randn(R.shape[1], 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.randn(R.shape[0], 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(graph.to_users(x).numpy(), Rn @ x.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(graph.to_items(y).numpy(), Rn.T @ y.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(graph.linear(x).numpy(), Rn.T @ Rn @ x.numpy(), rtol=1e-12,
                               atol=1e-14)
    wide = torch.randn(R.shape[1], 2 * PANEL + 7, dtype=torch.float64)  # panels, a ragged one
    np.testing.assert_allclose(graph.linear_wide(wide).numpy(), Rn.T @ Rn @ wide.numpy(),
                               rtol=1e-12, atol=1e-14)
    users = np.array([4, 2, 40, 4])  # a repeated user and one without interactions
    np.testing.assert_allclose(graph.linear_rows(users).numpy(), (R[users] @ Rn.T @ Rn).T,
                               rtol=1e-12, atol=1e-14)


def test_float32_products():
    train, R = power_law_graph(seed=2)
    graph = SpectralGraph(train)  # float32, threads from torch
    Rn, _ = normalized(R)
    got = graph.linear_rows(np.arange(R.shape[0]))
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), (R @ Rn.T @ Rn).T, rtol=1e-5, atol=1e-6)


def _projector_error(V, V_ref):
    V = V.numpy() if isinstance(V, torch.Tensor) else V
    return np.abs(V @ V.T - V_ref @ V_ref.T).max()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_randomized_svd_matches_numpy(seed):
    train, R = decaying_graph(seed)
    k = gapped_rank(R, low=10, min_gap=0.02)
    sigma_ref, V_ref = top_right_singular(normalized(R)[0], k)
    graph = SpectralGraph(train, dtype="float64")
    sigma, V = randomized_svd(graph, k, oversample=20, power_iters=40, seed=seed)
    np.testing.assert_allclose(sigma, sigma_ref, rtol=1e-10)
    np.testing.assert_allclose(V.numpy().T @ V.numpy(), np.eye(k), atol=1e-12)
    assert _projector_error(V, V_ref) < 1e-7
    # float32 and few iterations: the leading values still to float32-level accuracy
    sigma32, V32 = randomized_svd(SpectralGraph(train), k, oversample=20, power_iters=8)
    assert V32.dtype == torch.float32
    np.testing.assert_allclose(sigma32[:4], sigma_ref[:4], rtol=1e-4)


def test_randomized_svd_error_shrinks_with_power_iterations():
    train, R = decaying_graph(3)
    k = 10
    sigma_ref, V_ref = top_right_singular(normalized(R)[0], k)
    graph = SpectralGraph(train, dtype="float64")
    errors = [_projector_error(randomized_svd(graph, k, oversample=5, power_iters=q)[1], V_ref)
              for q in (0, 2, 8)]
    assert errors[0] > errors[1] > errors[2]


def test_randomized_svd_is_seeded_and_handles_a_wide_block():
    train, R = power_law_graph(seed=4)
    graph = SpectralGraph(train, dtype="float64")
    a, b = randomized_svd(graph, 5, seed=7), randomized_svd(graph, 5, seed=7)
    np.testing.assert_array_equal(a[0], b[0])
    torch.testing.assert_close(a[1], b[1], rtol=0, atol=0)
    # k + oversample beyond the rank (isolated users, items): capped, still the exact top-k
    sigma, V = randomized_svd(graph, 30, oversample=100, power_iters=3)
    np.testing.assert_allclose(sigma, top_right_singular(normalized(R)[0], 30)[0], rtol=1e-9,
                               atol=1e-12)


def test_scipy_svd_matches_numpy():
    train, R = decaying_graph(5)
    k = gapped_rank(R, low=15, min_gap=0.02)
    sigma_ref, V_ref = top_right_singular(normalized(R)[0], k)
    sigma, V = scipy_svd(SpectralGraph(train, dtype="float64"), k)
    np.testing.assert_allclose(sigma, sigma_ref, rtol=1e-10)
    assert _projector_error(V, V_ref) < 1e-8


def test_errors():
    train, _ = power_law_graph()
    graph = SpectralGraph(train)
    with pytest.raises(TypeError, match="train must be a gnn.data.UserItemCSR"):
        SpectralGraph(np.ones((2, 2)))
    with pytest.raises(ValueError, match="dtype must be one of"):
        SpectralGraph(train, dtype="int8")
    for k in (0, 41, 1.5):
        with pytest.raises(ValueError, match=r"randomized_svd\(\): k must be an int in \[1, 41\)"):
            randomized_svd(graph, k)
    with pytest.raises(ValueError, match=r"scipy_svd\(\): k must be an int in \[1, 41\)"):
        scipy_svd(graph, 41)
    with pytest.raises(ValueError, match="oversample must be an int >= 0"):
        randomized_svd(graph, 3, oversample=-1)
    with pytest.raises(ValueError, match="power_iters must be an int >= 0"):
        randomized_svd(graph, 3, power_iters=None)
