"""GF-CF written plainly with scipy: the baseline our graph filters are timed against (issue 18).

A direct transcription of the method as its authors' code computes it, with nothing of this
library: read train.txt / test.txt, R̃ = D_U^{-1/2} R D_I^{-1/2} as CSR, the top-256 right
singular vectors by ``scipy.sparse.linalg.svds``, then for blocks of 2,048 users a dense 0/1 block
``r`` and ``r R̃ᵀ R̃ + 0.3 · r D_I^{-1/2} V Vᵀ D_I^{1/2}`` (scipy CSR products and BLAS),
training items set to -inf, top 20 by ``argpartition``, recall@20 and NDCG@20 (IDCG over
min(20, |test items|)) averaged over the users with test items. Never imported by the package.

    OPENBLAS_NUM_THREADS=2 python scripts/gfcf_plain_scipy.py --data $GNN_DATA/gowalla --json out.json
"""
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")  # before numpy loads its BLAS

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from scipy.sparse.linalg import svds  # noqa: E402


def read_lines(path):
    users, items = [], []
    with open(path) as f:
        for line in f:
            ids = [int(x) for x in line.split()]
            if len(ids) > 1:
                users.extend([ids[0]] * (len(ids) - 1))
                items.extend(ids[1:])
    return np.array(users), np.array(items)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder with train.txt and test.txt")
    p.add_argument("--alpha", type=float, default=0.3)
    p.add_argument("--k", type=int, default=256)
    p.add_argument("--block", type=int, default=2048)
    p.add_argument("--json", default=None, help="write the summary here")
    args = p.parse_args(argv)
    start = time.perf_counter()
    tu, ti = read_lines(Path(args.data) / "train.txt")
    eu, ei = read_lines(Path(args.data) / "test.txt")
    n_users, n_items = max(tu.max(), eu.max()) + 1, max(ti.max(), ei.max()) + 1
    R = sp.csr_matrix((np.ones(tu.size), (tu, ti)), shape=(n_users, n_items))
    R.data[:] = 1.0
    test = sp.csr_matrix((np.ones(eu.size), (eu, ei)), shape=(n_users, n_items))
    loaded = time.perf_counter()

    with np.errstate(divide="ignore"):
        du = np.power(np.asarray(R.sum(1)).ravel(), -0.5)
        di = np.power(np.asarray(R.sum(0)).ravel(), -0.5)
    du[np.isinf(du)], di[np.isinf(di)] = 0.0, 0.0
    norm = (sp.diags(du) @ R @ sp.diags(di)).tocsr()
    _, _, vt = svds(norm, k=args.k)
    fitted = time.perf_counter()

    left = np.ascontiguousarray(vt.T * di[:, None])                      # D^-1/2 V
    right = np.ascontiguousarray(vt * np.divide(1.0, di, out=np.zeros_like(di), where=di > 0))
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    discount = 1.0 / np.log2(np.arange(2, 22))
    recall = ndcg = 0.0
    for lo in range(0, users.size, args.block):
        block = users[lo:lo + args.block]
        r = R[block].toarray()
        scores = r @ norm.T @ norm + args.alpha * (r @ left) @ right  # r R̃ᵀR̃ + α r Ψ
        seen = R[block].tocoo()
        scores[seen.row, seen.col] = -np.inf
        top = np.argpartition(-scores, 20, axis=1)[:, :20]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        truth = test[block]
        hits = np.array([np.isin(top[j], truth.indices[truth.indptr[j]:truth.indptr[j + 1]])
                         for j in range(block.size)], dtype=float)
        n_true = np.diff(truth.indptr)
        recall += (hits.sum(1) / n_true).sum()
        idcg = np.array([discount[:min(20, n)].sum() for n in n_true])
        ndcg += ((hits @ discount) / idcg).sum()
    end = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    summary = {"method": "gfcf plain scipy transcription", "alpha": args.alpha, "k": args.k,
               "block": args.block, "recall@20": recall / users.size, "ndcg@20": ndcg / users.size,
               "n_users_evaluated": int(users.size), "load_seconds": loaded - start,
               "fit_seconds": fitted - loaded, "eval_seconds": end - fitted,
               "wall_seconds": end - start, "cpu_seconds": usage.ru_utime + usage.ru_stime,
               "peak_rss_mb": usage.ru_maxrss / 1024,
               "blas_threads": os.environ["OPENBLAS_NUM_THREADS"]}
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
