"""The device run: every GPU check of the project in one command, at most 9 minutes on one H200.

Stages, each a subprocess with its own time limit, each writing its results into ``--out`` the
moment it ends (a stage that runs out of time loses only itself):

  1 tests    python3 -m pytest tests: the whole suite on CUDA (Triton compiled for the GPU, the
             CUDA-only tests: the synchronous Adjacency.to("cpu") under a busy stream, the
             sync-free sampler)                                  -> device.log
  2 kernels  python3 -m bench.kernels: SpMM and NGCF layer, ours / cuSPARSE / dense, fp32 and
             bf16, peak memory, the long-row threshold and S saved / recomputed sweeps
                                                                 -> kernels.json
  3 epochs   python3 -m bench.epochs: epochs/s of NGCF and LightGCN on ml-latest-small and
             Gowalla, and PyG's LightGCN on the same Gowalla graph -> epochs.json
  4 memory   python3 -m bench.memory_profile: memory against N, ours vs dense Â
                                                                 -> memory.json, memory.png
  5 curve    python3 -m gnn.reproduce configs/gowalla/lightgcn.json --device cuda --epochs N,
             N fitted to the time left                           -> curve.json, curve.png
plus device.json (machine, versions, each stage's command, status, seconds) and device.log
(every stage's output): 8 files, flat, as the device machine returns them.

Needs ``python3``, the checkout and the packages of the machine only: the checkout is made
importable as ``gnn`` without installing it (a folder of links mapped as setup.py maps the
packages, ``PYTHONSAFEPATH=1``). The GPU machine has no network, so the data travels with the
call. From the repository root of this machine (the device tool's ``run``)::

    mkdir -p .data && cp -r /work/shared/data/ml-latest-small /work/shared/data/gowalla .data/
    run(command="GNN_DATA=.data python3 -m bench.device_run --out $OUT",
        carry=[".data"], timeout_s=600)

(``.data/`` is git-ignored.) Then copy the returned files into ``results/gpu/`` and::

    python -m bench.report results/gpu/ --out results/gpu/ --section gpu \\
        --update-docs docs/BENCHMARKS.md --headlines README.md

Dry run, on any CPU in about half a minute (what bench/test_device_run.py runs): every stage at
tiny sizes on generated stand-in datasets, Triton through its interpreter, the tests collected
but not run, PyG skipped when torch_geometric is not installed::

    python3 -m bench.device_run --dry-run --out /tmp/device-dry
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import stages

ROOT = Path(__file__).resolve().parents[1]


def importable_checkout(workdir: Path) -> dict:
    """Environment that imports ``gnn``, ``gnn.kernels`` and ``gnn.data`` from this checkout.

    ``workdir/gnn`` mirrors ``gnn/`` with links, plus ``kernels`` -> ``kernels/`` and ``data`` ->
    ``data/`` (setup.py's package_dir); ``PYTHONSAFEPATH`` keeps the current folder (the
    repository root, whose ``gnn/`` lacks the two) off ``sys.path``.
    """
    mirror = workdir / "gnn"
    mirror.mkdir(parents=True)
    for entry in (ROOT / "gnn").iterdir():
        if entry.name != "__pycache__":
            (mirror / entry.name).symlink_to(entry)
    for name in ("kernels", "data"):
        (mirror / name).symlink_to(ROOT / name)
    path = [str(workdir), str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {"PYTHONPATH": os.pathsep.join(path), "PYTHONSAFEPATH": "1", "PYTHONUNBUFFERED": "1"}


class Log:
    """Everything every stage prints: to our stdout and to ``device.log``."""

    def __init__(self, path: Path):
        self.file = open(path, "a", encoding="utf-8", errors="replace")
        self.lock = threading.Lock()

    def write(self, text: str) -> None:
        with self.lock:
            sys.stdout.write(text)
            sys.stdout.flush()
            self.file.write(text)
            self.file.flush()


def run_stage(cmd, env, limit_s: float, log: Log) -> dict:
    """Run ``cmd`` in its own process group; kill the group at ``limit_s``."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace",
                            start_new_session=True)
    tail = []

    def pump():
        for line in proc.stdout:
            log.write(line)
            if line.strip():
                tail.append(line.rstrip())
                del tail[:-12]

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=max(1.0, limit_s))
    except subprocess.TimeoutExpired:
        timed_out = True
        stages.kill_group(proc)
    reader.join(timeout=10)
    seconds = time.perf_counter() - start
    status = "timeout" if timed_out else ("ok" if proc.returncode == 0 else "failed")
    return {"rc": proc.returncode, "status": status, "seconds": round(seconds, 1),
            "limit_s": round(limit_s, 1), "tail": tail}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for the results ($OUT)")
    p.add_argument("--budget-s", type=float, default=540.0,
                   help="seconds for all stages together (default 540: 9 minutes)")
    p.add_argument("--dry-run", action="store_true",
                   help="every stage on the CPU at tiny sizes (Triton interpreter)")
    p.add_argument("--stages", default=",".join(stages.NAMES),
                   help=f"comma-separated subset of {','.join(stages.NAMES)}")
    args = p.parse_args(argv)
    deadline = time.monotonic() + args.budget_s
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gnn-device-run-"))
    try:
        return run_all(args, out, work, deadline)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_all(args, out: Path, work: Path, deadline: float) -> int:
    env = dict(os.environ, **importable_checkout(work / "import"))
    if args.dry_run:
        from bench.tiny_data import write_tiny_datasets

        env.update(stages.DRY_RUN_ENV, GNN_DATA=str(write_tiny_datasets(work / "data")))
    elif env.get("GNN_DATA"):
        env["GNN_DATA"] = str(Path(env["GNN_DATA"]).resolve())
    log = Log(out / "device.log")
    report = {"dry_run": args.dry_run, "budget_s": args.budget_s, "python": sys.executable,
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "gnn_data": env.get("GNN_DATA"),
              "import_path": str(work / "import"), "stages": []}

    def save():
        (out / "device.json").write_text(json.dumps(report, indent=1) + "\n")

    report["machine"] = machine = stages.machine_info(env, dry_run=args.dry_run)
    save()
    log.write(f"machine: {json.dumps(machine)}\n")
    if not args.dry_run and not machine.get("cuda"):
        log.write("device_run: torch sees no CUDA device (see machine above); "
                  "use --dry-run on a CPU\n")
        return 2
    for name in filter(None, args.stages.split(",")):
        plan = stages.command(name, out, work, args.dry_run, deadline - time.monotonic())
        if plan is None:
            report["stages"].append({"name": name, "status": "skipped", "why": "no time left"})
            save()
            continue
        cmd, limit_s, extra = plan
        log.write(f"\n===== {name}: {' '.join(cmd)}  (limit {limit_s:.0f} s)\n")
        result = run_stage(cmd, dict(env, **extra.pop("env", {})), limit_s, log)
        stages.collect(name, out, work)
        report["stages"].append(dict(name=name, command=" ".join(cmd), **extra, **result))
        save()
    report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save()
    log.write("\n" + stages.summary(report) + "\n")
    return 0 if all(s["status"] in ("ok", "skipped") for s in report["stages"]) else 1

if __name__ == "__main__":
    sys.exit(main())
