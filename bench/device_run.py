"""The device run: every GPU measurement of the project in one command, at most 9 minutes.

    GNN_DATA=.data python3 -m bench.device_run --out $OUT      # on the GPU machine
    python3 -m bench.device_run --dry-run --out /tmp/dry       # any CPU, tiny sizes (CI)

Stages (tests, kernels, epochs, curve), each run in subprocesses within its own time limit that
write their files into ``--out`` the moment they end, plus device.json and device.log: 7 flat
files. The kernels stage is the benchmark suite (bench/test_sparse_ops.py) on CUDA, one pytest
per size, merged into kernels.json (and its memory.png) after each, so that a stage stopped by
its limit keeps every finished size. Needs only ``python3``, the checkout and the machine's
packages: the stages import the checkout as ``gnn`` through a folder of links.
docs/BENCHMARKS.md, "GPU results", says how.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("tests", "kernels", "epochs", "curve")
LIMITS = {"tests": 150, "kernels": 220, "epochs": 100}  # s, one H200; curve: the rest
END_MARGIN_S, MIN_STAGE_S = 10, 20  # kept for device.json and the summary; the least worth starting
CURVE_CONFIG, CURVE_EVALS = "configs/gowalla/lightgcn.json", 10
CURVE_STARTUP_S = 30.0  # process start, Gowalla load, adjacency, first-step compilation
DEFAULT_EPOCH_S = DEFAULT_EVAL_S = 2.0  # when the epoch stage measured nothing
# The kernels stage: the suite's sizes, one pytest each (the largest last), and its knobs: both
# dtypes, the sweeps that set the kernels' defaults (long-row threshold T, S saved/recomputed),
# short timing so that every size fits the limit.
KERNEL_SIZES = ("ml-latest-small", "gowalla", "powerlaw-N10000", "powerlaw-N100000",
                "powerlaw-N1000000", "powerlaw-N1000000-nnz50000000")
KERNEL_ENV = {"GNN_BENCH_DTYPES": "float32,bfloat16", "GNN_BENCH_RECOMPUTE_S": "1",
              "GNN_BENCH_THRESHOLDS": "128,256,512,1024,2048,4096,off", "GNN_BENCH_TARGET_S": "0.1"}
# The dry run: Triton's interpreter (set before triton is imported), one thread per process;
# our kernels through it in the kernel stage only (it runs even a tiny graph for seconds).
DRY_RUN_ENV = {"TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
DRY_KERNEL_SIZES = ("powerlaw-N32-nnz160", "powerlaw-N48-nnz192")
DRY_KERNEL_ENV = {"GNN_KERNEL_BACKEND": "triton", "GNN_BENCH_DEVICE": "cpu", "GNN_BENCH_DIM": "16",
                  "GNN_BENCH_THRESHOLDS": "4,off", "GNN_BENCH_TARGET_S": "0",
                  "GNN_BENCH_BUDGET": "6000"}  # bytes: the dense Â of N = 48 in fp32 is not run
DRY_EPOCHS = ["--device", "cpu", "--datasets", "gowalla,ml-latest-small", "--epochs", "1"]


def importable_checkout(workdir: Path) -> dict:
    """Environment importing ``gnn`` (with ``gnn.kernels`` and ``gnn.data``) from this checkout:
    ``workdir/gnn`` mirrors ``gnn/`` by links, plus kernels/ and data/ (setup.py's package_dir);
    PYTHONSAFEPATH keeps the repository root, whose ``gnn/`` lacks the two, off sys.path."""
    mirror = workdir / "gnn"
    mirror.mkdir(parents=True)
    for entry in (ROOT / "gnn").iterdir():
        if entry.name != "__pycache__":
            (mirror / entry.name).symlink_to(entry)
    for name in ("kernels", "data"):
        (mirror / name).symlink_to(ROOT / name)
    path = [str(workdir), str(ROOT)] + os.environ.get("PYTHONPATH", "").split(os.pathsep)
    return {"PYTHONPATH": os.pathsep.join(filter(None, path)), "PYTHONSAFEPATH": "1",
            "PYTHONUNBUFFERED": "1"}


def stage_command(name: str, out: Path, work: Path, dry_run: bool, left_s: float):
    """``(argvs, limit_s, extra)`` of a stage with ``left_s`` seconds left, or None (no time):
    its commands, run one after another within ``limit_s``; ``extra`` goes into device.json."""
    if name not in NAMES:
        raise ValueError(f"unknown stage {name!r}; expected one of {NAMES}")
    limit = left_s - END_MARGIN_S if name == "curve" else min(LIMITS[name], left_s - END_MARGIN_S)
    if limit < MIN_STAGE_S:
        return None
    python, extra = [sys.executable, "-m"], {}
    if name == "tests":
        argvs = [python + ["pytest", "-p", "no:cacheprovider", *cuda_test_files()] + (
            ["-qq", "--collect-only"] if dry_run else ["tests", "-q", "-rfE", "--maxfail=10"])]
    elif name == "kernels":  # one pytest per size: a size's json is written when it ends
        (work / "kernels").mkdir(exist_ok=True)
        knobs = dict(KERNEL_ENV, **DRY_KERNEL_ENV if dry_run else {})
        knobs = [f"{k}={v}" for k, v in knobs.items()]
        argvs = [["env", f"GNN_BENCH_SIZES={size}", *knobs] + python + [
            "pytest", "bench/test_sparse_ops.py", "-p", "no:cacheprovider", "-q", "-rfEs",
            "--benchmark-columns=median,rounds", "--benchmark-json",
            str(work / "kernels" / f"{size}.json")]
            for size in (DRY_KERNEL_SIZES if dry_run else KERNEL_SIZES)]
    elif name == "epochs":
        argvs = [python + ["bench.epochs", "--out", str(out / "epochs.json")]
                 + (DRY_EPOCHS if dry_run else [])]
    else:
        epochs, eval_every, basis = curve_plan(out, limit, dry_run)
        if epochs < 1:
            return None
        argvs = [python + ["gnn.reproduce", CURVE_CONFIG, "--device", "cpu" if dry_run else "cuda",
                           "--epochs", str(epochs), "--eval-every", str(eval_every), "--out",
                           str(work / "curve")]]
        extra.update(epochs=epochs, eval_every=eval_every, plan_basis=basis)
    return argvs, limit, extra


def cuda_test_files() -> list:
    """The test files that mention CUDA, kernels first: run first, so that a time-out hits the
    CPU-only rest (pytest runs each test once)."""
    found = [p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "tests").rglob("test_*.py"))
             if "cuda" in p.read_text(encoding="utf-8", errors="replace")]
    return sorted(found, key=lambda p: not p.startswith("tests/kernels/"))


def curve_plan(out: Path, limit_s: float, dry_run: bool):
    """``(epochs, eval_every, basis)``: the epochs that fit 85 % of ``limit_s`` after start-up and
    about CURVE_EVALS evaluations, from the epoch stage's Gowalla LightGCN times; at most 1000."""
    if dry_run:
        return 1, 1, "dry run"
    epoch_s, eval_s, basis = DEFAULT_EPOCH_S, DEFAULT_EVAL_S, "defaults (no epoch measurement)"
    try:
        mine = next(r for r in json.loads((out / "epochs.json").read_text())["records"]
                    if r.get("dataset") == "gowalla" and r.get("provider") == "ours lightgcn"
                    and r.get("status") == "ok")
        epoch_s, eval_s = mine["s_per_epoch"], mine["eval_seconds"]
        basis = f"epochs.json: {epoch_s:.2f} s/epoch, {eval_s:.2f} s/evaluation"
    except (OSError, ValueError, KeyError, StopIteration):
        pass
    usable = 0.85 * (limit_s - CURVE_STARTUP_S - (CURVE_EVALS + 1) * eval_s)
    epochs = int(min(1000, max(0, usable // epoch_s)))
    return epochs, max(1, epochs // CURVE_EVALS), basis


def collect(name: str, out: Path, work: Path) -> None:
    """Drop half-written files; merge the kernels stage's sizes into kernels.json (written
    atomically) and draw memory.png from it; give the curve stage's files their fixed names."""
    for tmp in out.glob("*.tmp"):
        tmp.unlink()
    sizes = KERNEL_SIZES + DRY_KERNEL_SIZES if name == "kernels" else ()
    merged = merge_suite_jsons(work / "kernels" / f"{size}.json" for size in sizes)
    if merged:
        from bench.plot import load_suite_json, memory_plot  # no torch: json and matplotlib

        (out / "kernels.json.tmp").write_text(json.dumps(merged, indent=1) + "\n")
        (out / "kernels.json.tmp").replace(out / "kernels.json")
        memory_plot(load_suite_json(out / "kernels.json")[0], out / "memory.png")
    folder = work / "curve"
    if name == "curve" and folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            if not path.stem.endswith(("-curve", "-probe")):
                shutil.copy(path, out / "curve.json")
        for path in sorted(folder.glob("*-curve.png")):
            shutil.copy(path, out / "curve.png")


def merge_suite_jsons(paths) -> dict:
    """One pytest-benchmark json of several runs of the suite: the first's machine and commit,
    every run's results, not-run and failed records, and its config's sizes joined ({} if none
    of ``paths`` holds a json: pytest-benchmark leaves an empty file when nothing ran, a cut-off
    one when the time limit ended it while writing)."""
    merged = {}
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            continue
        if not merged:
            merged = dict(data, benchmarks=[], gnn_not_run=[], gnn_failed=[],
                          gnn_config=dict(data.get("gnn_config", {}), sizes=[]))
        for key in ("benchmarks", "gnn_not_run", "gnn_failed"):
            merged[key] += data.get(key, [])
        merged["gnn_config"]["sizes"].append(data.get("gnn_config", {}).get("sizes"))
    if merged:
        merged["gnn_config"]["sizes"] = ",".join(map(str, merged["gnn_config"]["sizes"]))
    return merged


class Log:
    """Everything every stage prints: to our stdout and to ``device.log``."""

    def __init__(self, path: Path):
        self.file, self.lock = open(path, "a", encoding="utf-8", errors="replace"), threading.Lock()

    def write(self, text: str) -> None:
        with self.lock:
            for stream in (sys.stdout, self.file):
                stream.write(text)
                stream.flush()


def run_stage(cmd, env, limit_s: float, log: Log) -> dict:
    """Run ``cmd`` in its own process group; end the group (TERM, then KILL) at ``limit_s``."""
    start, tail = time.perf_counter(), []
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace",
                            start_new_session=True)

    def pump():
        for line in proc.stdout:
            log.write(line)
            if line.strip():
                tail.append(line.rstrip())
                del tail[:-12]

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=max(1.0, limit_s))
        status = "ok" if proc.returncode == 0 else "failed"
    except subprocess.TimeoutExpired:
        status = "timeout"
        for sig in (signal.SIGTERM, signal.SIGKILL):  # KILL only if TERM has not ended it in 5 s
            with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, sig)
                proc.wait(timeout=5)
                break
    reader.join(timeout=10)
    return {"rc": proc.returncode, "status": status, "limit_s": round(limit_s, 1), "tail": tail,
            "seconds": round(time.perf_counter() - start, 1)}


PROBE = r"""
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
    import triton.testing  # device-to-device copy, read + write: the memory ceiling
    a = torch.empty(2**28, device="cuda").normal_(); b = torch.empty_like(a)
    ms = triton.testing.do_bench(lambda: b.copy_(a), return_mode="median")
    info["copy_gbps"] = 2 * a.numel() * 4 / ms / 1e6
    del a, b
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
    """Versions, the GPU and whether the checkout imports (in a subprocess, as the stages run)."""
    try:
        res = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=120)
        info = json.loads(res.stdout.strip().splitlines()[-1]) if res.returncode == 0 else {
            "error": res.stderr.strip().splitlines()[-3:]}
    except (subprocess.TimeoutExpired, IndexError, ValueError) as exc:
        info = {"error": repr(exc)}
    if not dry_run and shutil.which("nvidia-smi"):
        info["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,"
             "temperature.gpu,utilization.gpu", "--format=csv"], capture_output=True, text=True,
            timeout=60).stdout.strip()
    return info


def run_all(args, out: Path, work: Path, deadline: float) -> int:
    env = dict(os.environ, **importable_checkout(work / "import"))
    if args.dry_run:  # stand-in data, written as the stages import: this process imports no gnn
        env.update(DRY_RUN_ENV, GNN_DATA=str(work / "data"))
        subprocess.run([sys.executable, "-c", "import os; from bench.graphs import "
                        "write_tiny_datasets as w; w(os.environ['GNN_DATA'])"],
                       cwd=ROOT, env=env, check=True)
    elif env.get("GNN_DATA"):
        env["GNN_DATA"] = str(Path(env["GNN_DATA"]).resolve())
    log = Log(out / "device.log")
    report = {"dry_run": args.dry_run, "budget_s": args.budget_s, "python": sys.executable,
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "gnn_data": env.get("GNN_DATA"),
              "import_path": str(work / "import"), "stages": []}

    def save():
        (out / "device.json").write_text(json.dumps(report, indent=1) + "\n")

    report["machine"] = machine = machine_info(env, args.dry_run)
    save()
    log.write(f"machine: {json.dumps(machine)}\n")
    if not args.dry_run and not machine.get("cuda"):
        log.write("device_run: torch sees no CUDA device (see machine above); "
                  "use --dry-run on a CPU\n")
        return 2
    for name in filter(None, args.stages.split(",")):
        plan = stage_command(name, out, work, args.dry_run, deadline - time.monotonic())
        if plan is None:
            report["stages"].append({"name": name, "status": "skipped", "why": "no time left"})
        else:
            cmds, limit_s, extra = plan
            start, runs = time.monotonic(), []
            for cmd in cmds:
                left_s = limit_s - (time.monotonic() - start)
                if runs and (runs[-1]["status"] == "timeout" or left_s < 1):
                    break
                log.write(f"\n===== {name}: {' '.join(cmd)}  (limit {left_s:.0f} s)\n")
                runs.append(run_stage(cmd, env, left_s, log))
                collect(name, out, work)
            report["stages"].append(dict(name=name, commands=[" ".join(c) for c in cmds], **extra,
                                         **stage_result(runs, limit_s, len(cmds))))
        save()
    report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save()
    log.write("\n" + "\n".join(stage_table(report["stages"])) + "\n")  # the tool returns the end
    return 0 if all(s["status"] in ("ok", "skipped") for s in report["stages"]) else 1


def stage_result(runs: list, limit_s: float, planned: int) -> dict:
    """A stage's outcome from its commands' (``run_stage``): the worst status, the first failing
    rc, the seconds together, the last command's tail."""
    status = next((s for s in ("timeout", "failed") if any(r["status"] == s for r in runs)), "ok")
    return {"rc": next((r["rc"] for r in runs if r["rc"]), 0), "status": status,
            "limit_s": round(limit_s, 1), "tail": runs[-1]["tail"],
            "seconds": round(sum(r["seconds"] for r in runs), 1),
            "commands_run": f"{len(runs)} of {planned}"}


def machine_lines(device: dict) -> list:
    """device.json as markdown: the run, the machine, each stage's outcome (for bench.report)."""
    from bench.measure import fmt_bytes  # torch: the report's process, never the run's

    m = device.get("machine", {})
    dry = (" (DRY RUN on the CPU: sizes are tiny, times mean nothing)"
           if device.get("dry_run") else "")
    lines = [f"- device run of {device.get('started', '?')}{dry}",
             f"- GPU: {m.get('gpu', 'none')} (compute capability {m.get('capability', '–')}, "
             f"{fmt_bytes(m.get('gpu_memory_bytes'))}, {m.get('multiprocessors', '–')} SMs; "
             f"device-to-device copy {m.get('copy_gbps') or 0:.0f} GB/s, read + write); "
             f"host: {m.get('cpu_count', '?')} cores",
             f"- python {m.get('python', '?')}, torch {m.get('torch', '?')} (CUDA "
             f"{m.get('torch_cuda', '–')}), triton {m.get('triton', '?')}, numpy "
             f"{m.get('numpy', '?')}, torch_geometric "
             f"{m.get('torch_geometric') or 'not installed'}"]
    if m.get("nvidia_smi"):
        lines.append("- nvidia-smi: " + m["nvidia_smi"].replace("\n", " / "))
    return lines + [""] + stage_table(device.get("stages", [])) + [""]


def stage_table(stages: list) -> list:
    """Each stage's outcome as markdown table lines: the log's last lines, the report's table."""
    def last(s):
        return ((s.get("tail") or [s.get("why") or ""])[-1]).replace("|", "/")[:120]

    return ["| stage | status | seconds | limit | last line |", "|---|---|---|---|---|"] + [
        f"| {s['name']} | {s['status']} | {s.get('seconds', '–')} | {s.get('limit_s', '–')} | "
        + (f"`{last(s)}` |" if last(s) else "|") for s in stages]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for the results ($OUT)")
    p.add_argument("--budget-s", type=float, default=540.0,
                   help="seconds for all stages together (default 540: 9 minutes)")
    p.add_argument("--dry-run", action="store_true", help="every stage on the CPU at tiny sizes")
    p.add_argument("--stages", default=",".join(NAMES), help="comma-separated subset of the stages")
    args = p.parse_args(argv)
    deadline = time.monotonic() + args.budget_s
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gnn-device-run-"))
    try:
        return run_all(args, out, work, deadline)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
