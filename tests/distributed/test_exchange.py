"""The halo exchange is differentiable: two layers of ``Â`` through exchanges on P ranks give
each rank its rows of the single-process forward and of the gradient ``ÂᵀÂᵀW`` (float64)."""
import numpy as np
import pytest

import workers
from gnn.distributed.local import run_ranks, unwrap


@pytest.mark.parametrize("world", [3])
def test_two_layers_forward_and_backward_match_one_process(world):
    results = unwrap(run_ranks(workers.two_layer_gradient, world, 11))
    assert sum(r["halo"] for r in results) > 0  # the exchange had work to do
    for r in results:
        np.testing.assert_allclose(r["out"], r["forward"], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(r["grad"], r["want"], rtol=1e-12, atol=1e-12)
