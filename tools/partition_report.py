"""What the nnz-balanced row partition of gnn.distributed costs per rank (docs/DISTRIBUTED.md).

    python -m tools.partition_report --graphs gowalla powerlaw-N1000000 \\
        --procs 2 4 8 16 64 --out results/partition_report.json

Per graph and number of processes P: nnz imbalance (max / mean), rows and halo rows per rank
(remote rows received per layer) and the bytes of a step, d = 64, float32, L = 3, B = 2048: halo
``d·4·Σ_r |H_r|`` per layer, ``2L`` of those per step; batch ``2·3B·D·4·(P-1)/P`` (D = 64
LightGCN, 256 NGCF); NGCF's weight all-reduce ``2(P-1)/P·4·L(2d² + d)``. Only Â's pattern is
needed, so a power-law graph's CSR is built straight from its pairs (1e7 nodes fit).
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

from bench.graphs import dataset, parse_powerlaw, powerlaw_interactions
from gnn.distributed.partition import nnz_balanced_bounds, partition_stats

DIM, LAYERS, BATCH = 64, 3, 2048
READOUT_WIDTH = {"lightgcn": DIM, "ngcf": DIM * (LAYERS + 1)}


def pattern(label: str):
    """``(rowptr, col, n_nodes)`` of the bipartite adjacency ``[[0, R], [Rᵀ, 0]]`` of a graph."""
    sizes = parse_powerlaw(label)
    if sizes is not None:
        user, item, n_users, n_items = powerlaw_interactions(*sizes, seed=0)  # sorted by user
    else:
        ds = dataset(label)
        (user, item), n_users, n_items = ds.train_csr.pairs(), ds.n_users, ds.n_items
    user, item = np.asarray(user, np.int64), np.asarray(item, np.int64)
    rowptr = np.zeros(n_users + n_items + 1, dtype=np.int64)
    degree = [np.bincount(user, minlength=n_users), np.bincount(item, minlength=n_items)]
    np.cumsum(np.concatenate(degree), out=rowptr[1:])
    # pairs sorted by (user, item) are the user rows already; a stable sort by item gives the
    # item rows with their users ascending
    col = np.empty(2 * user.size, dtype=np.int32)  # int32 straight away: 1e7-node graphs fit
    col[: user.size], col[user.size:] = item + n_users, user[np.argsort(item, kind="stable")]
    return torch.from_numpy(rowptr), torch.from_numpy(col), n_users + n_items


def report(rowptr, col, n_nodes: int, world: int) -> dict:
    """The numbers of one (graph, P) pair (module docstring)."""
    ranks = partition_stats(rowptr, col, nnz_balanced_bounds(rowptr, world))
    nnz, halo, rows = (np.array([r[k] for r in ranks]) for k in ("nnz", "halo_rows", "rows"))
    remote, layer_bytes = (world - 1) / world, DIM * 4 * int(halo.sum())
    out = {"P": world, "N": n_nodes, "nnz": int(rowptr[-1]),
           "nnz_imbalance": float(nnz.max() / nnz.mean()), "rows_min": int(rows.min()),
           "rows_max": int(rows.max()), "halo_rows_mean": float(halo.mean()),
           "halo_rows_max": int(halo.max()), "halo_rows_total": int(halo.sum()),
           "halo_over_N": float(halo.sum() / n_nodes), "halo_bytes_per_layer": layer_bytes,
           "halo_bytes_per_layer_max_rank": DIM * 4 * int(halo.max()),
           "halo_bytes_per_step": 2 * LAYERS * layer_bytes,
           "allreduce_bytes_per_step_ngcf": int(2 * remote * 4 * LAYERS * (2 * DIM * DIM + DIM))}
    for model, width in READOUT_WIDTH.items():
        out[f"batch_bytes_per_step_{model}"] = int(2 * 3 * BATCH * width * 4 * remote)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.partition_report",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--graphs", nargs="+", default=["gowalla", "powerlaw-N1000000"])
    p.add_argument("--procs", nargs="+", type=int, default=[2, 4, 8, 16, 64])
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    args = p.parse_args(argv)
    rows = []
    for label in args.graphs:
        start = time.perf_counter()
        rowptr, col, n = pattern(label)
        built = round(time.perf_counter() - start, 1)
        for world in args.procs:
            rss = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
            rows.append(row := {"graph": label, **report(rowptr, col, n, world), "build_s": built,
                                "peak_rss_gib": rss})
            print(f"{label:20s} P={world:3d} N={n:>9d} nnz={row['nnz']:>10d} imbalance="
                  f"{row['nnz_imbalance']:.3f} halo/rank mean={row['halo_rows_mean']:.0f} max="
                  f"{row['halo_rows_max']} (Σ={row['halo_over_N']:.2f} N) layer="
                  f"{row['halo_bytes_per_layer'] / 2**20:.1f} MiB step="
                  f"{row['halo_bytes_per_step'] / 2**20:.1f} MiB", flush=True)
        del rowptr, col
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
