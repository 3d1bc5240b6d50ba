"""End-to-end timing of the graph filters against the plain scipy GF-CF, side by side (issue 18).

Runs, alternately and ``--repeats`` times each, every command below as a child process with
2 threads for torch, OpenMP and the BLAS libraries (OMP_NUM_THREADS, MKL_NUM_THREADS,
OPENBLAS_NUM_THREADS), and records each run's wall seconds, CPU seconds (user + system) and peak
resident memory from the child's own resource usage (``os.wait4``), the load average around it,
and the recall@20 / NDCG@20 it reported:

* ``python -m gnn.reproduce configs/gowalla/<config>.json`` for each ``--configs`` entry;
* ``python scripts/gfcf_plain_scipy.py`` (the baseline; ``--no-plain`` skips it).

The machine may be shared: the load averages say how much, and the medians are the summary.

    python scripts/graph_filter_timing.py --configs gfcf bspm --repeats 3 \\
        --json results/graph_filters/timing-gowalla.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
THREADS = {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}


def run_child(cmd, env) -> dict:
    """Run ``cmd``; wall time from here, CPU time and peak RSS from the child's rusage."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{output}")
    return {"wall_seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024, "load_before": load_before,
            "load_after": os.getloadavg()[0]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", nargs="+", default=["gfcf"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-plain", action="store_true")
    p.add_argument("--data-root", default=os.environ.get("GNN_DATA"))
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    env = {**os.environ, **THREADS}
    gowalla = Path(args.data_root or Path.home() / ".cache" / "gnn") / "gowalla"
    runs = {name: [] for name in args.configs}
    if not args.no_plain:
        runs["plain scipy GF-CF"] = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name in runs:
                out = Path(tmp) / f"{name.replace(' ', '_')}-{repeat}.json"
                if name in args.configs:
                    cmd = [sys.executable, "-m", "gnn.reproduce",
                           str(REPO / "configs" / "gowalla" / f"{name}.json"), "--out", tmp]
                    if args.data_root:
                        cmd += ["--data-root", args.data_root]
                    result = run_child(cmd, env)
                    summary = json.loads((Path(tmp) / f"{name}-cpu.json").read_text())
                else:
                    cmd = [sys.executable, str(REPO / "scripts" / "gfcf_plain_scipy.py"),
                           "--data", str(gowalla), "--json", str(out)]
                    result = run_child(cmd, env)
                    summary = json.loads(out.read_text())
                result.update({k: summary[k] for k in ("recall@20", "ndcg@20")})
                result["in_process_wall_seconds"] = summary["wall_seconds"]
                runs[name].append(result)
                print(f"{name} run {repeat + 1}: " + ", ".join(
                    f"{k} {v:.4g}" for k, v in result.items()), flush=True)
    table = {name: {f"median_{key}": statistics.median(r[key] for r in rows)
                    for key in ("wall_seconds", "cpu_seconds", "peak_rss_mb")}
             for name, rows in runs.items()}
    if not args.no_plain:
        plain = table["plain scipy GF-CF"]
        for name in args.configs:
            for key in ("wall_seconds", "cpu_seconds"):
                table[name][f"{key}_speedup_vs_plain"] = plain[f"median_{key}"] / \
                    table[name][f"median_{key}"]
    for name, row in table.items():
        print(name, {k: round(v, 3) for k, v in row.items()})
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.processor()}",
            "python": platform.python_version(), "threads": THREADS, "repeats": args.repeats,
            "order": "alternating, one run of each per round", "runs": runs, "medians": table,
            "note": "a shared machine: compare runs with similar load averages"}, indent=1) + "\n")


if __name__ == "__main__":
    main()
