"""The stages of the device run (bench/device_run.py): their commands, limits and outputs.

Limits are seconds on one H200 (16 host cores); the learning-curve stage takes what is left,
and fits its number of epochs to it from the epoch stage's measured Gowalla LightGCN epoch and
evaluation times. The dry run keeps every command and swaps the sizes for tiny ones.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

NAMES = ("tests", "kernels", "epochs", "memory", "curve")
LIMITS = {"tests": 150, "kernels": 160, "epochs": 100, "memory": 60}
END_MARGIN_S = 10  # kept at the end for device.json and the summary
MIN_STAGE_S = 20
CURVE_CONFIG = "configs/gowalla/lightgcn.json"
CURVE_STARTUP_S = 30.0  # process start, Gowalla load, adjacency, first-step compilation
DEFAULT_EPOCH_S, DEFAULT_EVAL_S = 2.0, 2.0  # when the epoch stage measured nothing
CURVE_EVALS = 10

#: Environment of every dry-run stage: Triton's interpreter (set before triton is imported),
#: one thread per process (tiny sizes; a shared 2-core machine).
DRY_RUN_ENV = {"TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
#: ... and of the dry run's kernel stage: our kernels through that interpreter on the CPU (the
#: other stages keep the torch backend there: the interpreter runs a tiny graph for seconds).
INTERPRETED_KERNELS = {"GNN_KERNEL_BACKEND": "triton"}

DRY_ARGS = {
    "kernels": ["--device", "cpu", "--sizes", "powerlaw-N32-nnz160", "--d", "16",
                "--thresholds", "4,off", "--quick"],
    "epochs": ["--device", "cpu", "--datasets", "gowalla,ml-latest-small", "--epochs", "1"],
    "memory": ["--device", "cpu", "--sizes", "powerlaw-N48-nnz192,ml-latest-small", "--d", "16"],
}


def _python(*args) -> list:
    return [sys.executable, *args]


def command(name: str, out: Path, work: Path, dry_run: bool, left_s: float):
    """``(argv, limit_s, extra)`` of a stage with ``left_s`` seconds left, or None (no time).

    ``extra`` goes into device.json (and its ``env`` into the stage's environment).
    """
    limit = left_s - END_MARGIN_S
    if name != "curve":
        limit = min(LIMITS[name], limit)
    if limit < MIN_STAGE_S:
        return None
    extra = {"env": dict(INTERPRETED_KERNELS) if dry_run and name == "kernels" else {}}
    if name == "tests":
        first = cuda_test_files()
        argv = _python("-m", "pytest", "-p", "no:cacheprovider", *first)
        argv += ["-qq", "--collect-only"] if dry_run else ["tests", "-q", "-rfE", "--maxfail=10"]
    elif name == "kernels":
        argv = _python("-m", "bench.kernels", "--out", str(out / "kernels.json"))
    elif name == "epochs":
        argv = _python("-m", "bench.epochs", "--out", str(out / "epochs.json"))
    elif name == "memory":
        argv = _python("-m", "bench.memory_profile", "--out", str(out / "memory.json"),
                       "--plot", str(out / "memory.png"))
    elif name == "curve":
        epochs, eval_every, basis = curve_plan(out, limit, dry_run)
        if epochs < 1:
            return None
        argv = _python("-m", "gnn.reproduce", CURVE_CONFIG, "--device", "cpu" if dry_run else "cuda",
                       "--epochs", str(epochs), "--eval-every", str(eval_every),
                       "--out", str(work / "curve"))
        extra.update(epochs=epochs, eval_every=eval_every, plan_basis=basis)
        return argv, limit, extra
    else:
        raise ValueError(f"unknown stage {name!r}; expected one of {NAMES}")
    if dry_run:
        argv += DRY_ARGS.get(name, [])
    return argv, limit, extra


def cuda_test_files() -> list:
    """The test files that mention CUDA (kernels, device copies, sync-free sampling...), run
    first so that a time-out hits the CPU-only rest; pytest runs each test once."""
    root = Path(__file__).resolve().parents[1]
    found = [p.relative_to(root).as_posix() for p in sorted((root / "tests").rglob("test_*.py"))
             if "cuda" in p.read_text(encoding="utf-8", errors="replace")]
    return sorted(found, key=lambda p: not p.startswith("tests/kernels/"))


def curve_plan(out: Path, limit_s: float, dry_run: bool):
    """``(epochs, eval_every, basis)``: as many epochs as fit in ``limit_s`` (85 % of it, after
    start-up and about CURVE_EVALS evaluations), at most the config's 1000."""
    if dry_run:
        return 1, 1, "dry run"
    epoch_s, eval_s, basis = DEFAULT_EPOCH_S, DEFAULT_EVAL_S, "defaults (no epoch measurement)"
    try:
        records = json.loads((out / "epochs.json").read_text())["records"]
        mine = next(r for r in records if r.get("dataset") == "gowalla"
                    and r.get("provider") == "ours lightgcn" and r.get("status") == "ok")
        epoch_s, eval_s = mine["s_per_epoch"], mine["eval_seconds"]
        basis = f"epochs.json: {epoch_s:.2f} s/epoch, {eval_s:.2f} s/evaluation"
    except (OSError, ValueError, KeyError, StopIteration):
        pass
    usable = 0.85 * (limit_s - CURVE_STARTUP_S - (CURVE_EVALS + 1) * eval_s)
    epochs = int(min(1000, max(0, usable // epoch_s)))
    return epochs, max(1, epochs // CURVE_EVALS), basis


def collect(name: str, out: Path, work: Path) -> None:
    """Move a stage's files into ``out`` under their fixed names; drop half-written ones."""
    for tmp in out.glob("*.tmp"):
        tmp.unlink()
    if name != "curve":
        return
    folder = work / "curve"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if not path.stem.endswith(("-curve", "-probe")):
            shutil.copy(path, out / "curve.json")
    for path in sorted(folder.glob("*-curve.png")) if folder.is_dir() else []:
        shutil.copy(path, out / "curve.png")


def kill_group(proc: subprocess.Popen) -> None:
    """End the stage's process group (the stage and its children only)."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


_PROBE = r"""
import json, os, platform, sys
info = {"python": sys.version.split()[0], "platform": platform.platform(),
        "cpu_count": os.cpu_count()}
import numpy, torch, triton
info.update(torch=torch.__version__, triton=triton.__version__, numpy=numpy.__version__,
            cuda=torch.cuda.is_available(), torch_cuda=torch.version.cuda)
if info["cuda"]:
    p = torch.cuda.get_device_properties(0)
    info.update(gpu=p.name, capability=f"{p.major}.{p.minor}", gpu_memory_bytes=p.total_memory,
                multiprocessors=p.multi_processor_count)
try:
    import torch_geometric
    info["torch_geometric"] = torch_geometric.__version__
except ImportError:
    info["torch_geometric"] = None
try:
    import gnn, gnn.kernels, gnn.data
    info["gnn_from"] = os.path.dirname(gnn.__file__)
except Exception as exc:
    info["gnn_import_error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(info))
"""


def machine_info(env: dict, dry_run: bool) -> dict:
    """Versions, the GPU and whether the checkout imports (a subprocess, as the stages run)."""
    root = Path(__file__).resolve().parents[1]
    try:
        res = subprocess.run(_python("-c", _PROBE), cwd=root, env=env, capture_output=True,
                             text=True, timeout=120)
        info = json.loads(res.stdout.strip().splitlines()[-1]) if res.returncode == 0 else {
            "error": res.stderr.strip().splitlines()[-3:]}
    except (subprocess.TimeoutExpired, IndexError, ValueError) as exc:
        info = {"error": repr(exc)}
    if not dry_run and shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,"
                              "clocks.sm,clocks.max.sm,temperature.gpu,utilization.gpu",
                              "--format=csv"], capture_output=True, text=True, timeout=60)
        info["nvidia_smi"] = smi.stdout.strip()
    return info


def summary(report: dict) -> str:
    """The short table printed last (the device tool returns the end of the output)."""
    lines = ["stage    status    seconds  limit  last line"]
    for s in report["stages"]:
        last = (s.get("tail") or [s.get("why", "")])[-1] if s.get("tail") or s.get("why") else ""
        lines.append(f"{s['name']:<8} {s['status']:<9} {s.get('seconds', 0):>7}  "
                     f"{s.get('limit_s', 0):>5}  {last[:90]}")
    return "\n".join(lines)
