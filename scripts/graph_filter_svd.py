"""Which truncated SVD the graph filters should use: randomized (our SpMM) against ARPACK (issue 18).

For each method (``scipy.sparse.linalg.svds``, and the randomized subspace iteration with
several power-iteration counts) on Gowalla's R̃: the SVD's wall and CPU seconds, its singular
values' largest relative error and the distance of its singular subspace to ARPACK's
(``sin θ_max`` of the principal angles, and the mean ``sin² θ``), the agreement of the filter
built on it with the filter built on ARPACK's (the mean share of common items in the two top-20
lists of ``--overlap-users`` random users: what the ranking metrics see, without test labels),
and, with ``--metrics``, the filter's test recall@20 / NDCG@20. ARPACK is the reference
(``tol=0``: machine precision).

    python scripts/graph_filter_svd.py --filter gfcf --k 256 --metrics \
        --json results/graph_filters/svd-gowalla-gfcf.json
"""
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from gnn.data import load_dataset  # noqa: E402
from gnn.models.graph_filters import BSPM, GFCF  # noqa: E402
from gnn.models.spectral import SpectralGraph, randomized_svd, scipy_svd  # noqa: E402


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn):
    wall, cpu = time.perf_counter(), cpu_seconds()
    out = fn()
    return out, time.perf_counter() - wall, cpu_seconds() - cpu


def subspace_distance(V, V_ref):
    """(sin θ_max, mean sin² θ) of the principal angles between two orthonormal bases."""
    cosines = np.linalg.svd(V.T @ V_ref, compute_uv=False).clip(0, 1)
    return float(np.sqrt(1 - cosines.min() ** 2)), float(np.mean(1 - cosines ** 2))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="gowalla")
    p.add_argument("--k", type=int, default=256)
    p.add_argument("--oversample", type=int, default=64)
    p.add_argument("--power-iters", default="1,2,3,4,6,8")
    p.add_argument("--filter", default="gfcf", choices=["gfcf", "bspm"],
                   help="the filter whose top-20 lists are compared (and metrics computed)")
    p.add_argument("--overlap-users", type=int, default=2000)
    p.add_argument("--metrics", action="store_true", help="also the test recall@20 / NDCG@20")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ds = load_dataset(args.dataset, split="given")
    graph = SpectralGraph(ds.train_csr)
    cls = {"gfcf": GFCF, "bspm": BSPM}[args.filter]
    sample = np.random.default_rng(0).choice(ds.n_users, args.overlap_users, replace=False)
    rows, exact_top = [], None

    def record(name, svd_kwargs, result, wall, cpu, reference):
        nonlocal exact_top
        sigma, V = result
        row = {"method": name, **svd_kwargs, "svd_wall_seconds": wall, "svd_cpu_seconds": cpu,
               "load_average": os.getloadavg()[0]}
        if reference is not None:
            row["sigma_max_rel_error"] = float(np.max(np.abs(sigma - reference[0]) / reference[0]))
            row["sin_theta_max"], row["mean_sin2_theta"] = subspace_distance(V.numpy(), reference[1])
        model = cls(k=args.k, **svd_kwargs).fit(ds.train_csr)
        top = model.recommend(sample, k=20)
        if exact_top is None:
            exact_top = top
        row["top20_overlap_with_arpack"] = float(np.mean(
            [np.intersect1d(a, b).size / 20 for a, b in zip(top, exact_top)]))
        if args.metrics:
            metrics = model.evaluate(ds.test_csr)
            row.update({f"{args.filter}_recall@20": metrics["recall@20"],
                        f"{args.filter}_ndcg@20": metrics["ndcg@20"]})
        rows.append(row)
        print(json.dumps(row), flush=True)

    result, wall, cpu = timed(lambda: scipy_svd(graph, args.k))
    reference = (result[0], result[1].numpy().astype(np.float64))
    record("scipy svds (ARPACK)", {"svd": "scipy"}, result, wall, cpu, None)
    for q in [int(x) for x in args.power_iters.split(",") if x]:
        kwargs = {"svd": "randomized", "oversample": args.oversample, "power_iters": q}
        result, wall, cpu = timed(lambda: randomized_svd(graph, args.k, args.oversample, q))
        record(f"randomized, {q} power iterations", kwargs, result, wall, cpu, reference)
    summary = {"dataset": ds.name, "filter": args.filter, "k": args.k,
               "arpack_sigma": {str(j): float(reference[0][j - 1])
                                for j in (1, 2, 10, 50, 100, args.k // 2, args.k)},
               "oversample": args.oversample, "overlap_users": args.overlap_users,
               "n_users": ds.n_users, "n_items": ds.n_items,
               "nnz": ds.train_csr.nnz, "threads": args.threads, "dtype": "float32",
               "machine": f"{platform.machine()} {os.cpu_count()} CPUs ({platform.processor()})",
               "torch": torch.__version__, "rows": rows,
               "note": "timings on a shared machine: see load_average of each row"}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
