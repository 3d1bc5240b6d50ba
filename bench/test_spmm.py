"""SpMM ``Y = Â·E`` (one propagation step), providers side by side per size.

Providers:
  ours            gnn.kernels.csr_spmm (Triton on CUDA, the pure-torch reference on CPU)
  torch_csr    torch.sparse.mm on a torch CSR tensor (int32 indices)
  dense           a dense N×N Â times E (only where Â fits the memory budget; else "OOM (needs X GB)")
  gather_scatter  index_select the source rows, scale, index_add_ into the targets: the
                  edge-materialising message passing of PyG-style libraries (nnz×d messages)
  scipy           scipy.sparse CSR @ ndarray (CPU only)
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.conftest import (base_info, embedding_dim, graph, memory_budget, not_run,
                            optional, run_benchmark, spmm_model_bytes)

PROVIDERS = ["ours", "torch_csr", "dense", "gather_scatter", "scipy"]
DTYPE = torch.float32


def torch_csr(adj):
    """Â as a torch sparse CSR tensor with int32 indices (int64 where int32 is refused)."""
    n = adj.n_nodes
    try:
        return torch.sparse_csr_tensor(adj.rowptr.to(torch.int32), adj.col, adj.val, (n, n),
                                       check_invariants=False)
    except RuntimeError:  # pragma: no cover - older builds
        return torch.sparse_csr_tensor(adj.rowptr, adj.col.long(), adj.val, (n, n))


def csr_bytes(t: torch.Tensor) -> int:
    return sum(x.numel() * x.element_size()
               for x in (t.crow_indices(), t.col_indices(), t.values()))


def dense_adjacency(adj, dtype=DTYPE) -> torch.Tensor:
    return torch_csr(adj).to_dense().to(dtype)


def edge_rows(adj) -> torch.Tensor:
    """The target row of every entry (int64, as in PyG's edge_index)."""
    n = adj.n_nodes
    return torch.repeat_interleave(torch.arange(n, device=adj.device), adj.rowptr.diff())


def gather_scatter_spmm(row, col, val, x):
    messages = x.index_select(0, col) * val.unsqueeze(1)           # nnz × d, materialised
    return torch.zeros(x.shape[0], x.shape[1], dtype=x.dtype,
                       device=x.device).index_add_(0, row, messages)


def gather_scatter_bytes(nnz: int, d: int, elem: int) -> int:
    """edge_index (2 × nnz int64) + val (nnz fp32) + the nnz×d message tensor."""
    return nnz * (2 * 8 + 4) + nnz * d * elem


@pytest.fixture(scope="module")
def inputs(size, device):
    adj = graph(size, device)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(adj.n_nodes, embedding_dim(), generator=gen, dtype=torch.float32).to(device, DTYPE)
    return adj, x


@pytest.mark.parametrize("provider", PROVIDERS)
def test_spmm(benchmark, provider, size, inputs, device):
    adj, x = inputs
    n, d, elem = adj.n_nodes, x.shape[1], x.element_size()
    info = base_info("spmm", provider, size, adj, d, DTYPE, device)
    model_bytes = spmm_model_bytes(n, adj.nnz, d, elem)

    if provider == "ours":
        csr_spmm = optional("gnn.kernels", "csr_spmm")
        info["repr_bytes"] = adj.rowptr.nbytes + adj.col.nbytes + adj.val.nbytes
        info["repr"] = f"CSR rowptr {adj.rowptr.dtype}, col {adj.col.dtype}, val {adj.val.dtype}"
        fn = lambda: csr_spmm(adj.rowptr, adj.col, adj.val, x, symmetric=True)  # noqa: E731
    elif provider == "torch_csr":
        a = torch_csr(adj)
        info["repr_bytes"] = csr_bytes(a)
        info["repr"] = f"torch sparse CSR, indices {a.crow_indices().dtype}"
        fn = lambda: torch.sparse.mm(a, x)  # noqa: E731
    elif provider == "dense":
        needs = n * n * elem
        info["repr_bytes"] = needs
        info["repr"] = "dense N×N"
        if needs > memory_budget(device):
            not_run(benchmark, info, needs)
        a = dense_adjacency(adj)
        fn = lambda: a @ x  # noqa: E731
    elif provider == "gather_scatter":
        row, col = edge_rows(adj), adj.col.long()
        info["repr_bytes"] = gather_scatter_bytes(adj.nnz, d, elem) - adj.nnz * d * elem
        info["materialised_bytes"] = adj.nnz * d * elem
        info["repr"] = "edge_index int64 (2×nnz) + val; materialised: nnz×d messages"
        fn = lambda: gather_scatter_spmm(row, col, adj.val, x)  # noqa: E731
    elif provider == "scipy":
        if device.type != "cpu":
            pytest.skip("scipy runs on the CPU only")
        a = adj.to_scipy().astype(np.float32)
        xn = x.numpy()
        info["repr_bytes"] = a.indptr.nbytes + a.indices.nbytes + a.data.nbytes
        info["repr"] = f"scipy CSR, indices {a.indices.dtype}"
        fn = lambda: a @ xn  # noqa: E731
    else:  # pragma: no cover
        raise AssertionError(provider)

    reference = torch.sparse.mm(torch_csr(adj), x)

    def check(y):  # every provider computes the same Y
        y = torch.as_tensor(y, device=device)
        torch.testing.assert_close(y.float(), reference.float(), rtol=1e-4, atol=1e-4)

    run_benchmark(benchmark, fn, info, device=device, model_bytes=model_bytes, check=check)
