"""Where one training step's time goes, op by op, against the machine's own memory ceilings.

    python -m bench.step_profile --dataset ml-latest-small --model ngcf
    python -m bench.step_profile --dataset gowalla --model lightgcn [--batch 1024] [--steps 10]

Runs ``gnn.Trainer.train_step`` (the trainer's own step: ``model.loss``, backward, Adam) on a
fixed batch (bench/graphs.py) under ``torch.profiler`` for ``--steps`` steps after a warm-up,
with the model's ``loss`` / read-out / propagation methods labelled (on this instance only: the
library carries no profiling code); then one more step recording allocations, for the bytes. Each operation of a step (each SpMM or
NGCF layer, each read-out and loss op, each autograd node of the backward, the optimiser) is
one row: its median time over the steps, the bytes it moves by the byte model of
bench/step_bytes.py, the GB/s that makes, and its floor, the time the copy / gather / GEMM
ceilings measured in the same run (bench/ceilings.py) allow. Sampling (the epoch's positives
and negatives, drawn once per epoch by the trainer) is timed on its own and shown per step.
Writes Markdown to ``results/cpu/step_profile-<dataset>-<model>.md`` (``--out``).

The numbers are wall-clock times: on a shared machine, read them with the load average printed
next to them (the profiler itself adds a few microseconds per op).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from bench import ceilings, graphs
from bench.step_bytes import ByteModel, Cost
from gnn import TrainConfig, Trainer
from gnn.models import base as model_base

LABEL = "## "  # prefix of the phase labels this tool puts around the model's methods
PHASES = ("sampling", "propagate", "readout", "loss", "forward (other)", "backward",
          "optimizer", "gaps")


def _labelled(fn, name):
    def run(*args, **kwargs):
        with record_function(LABEL + name):
            return fn(*args, **kwargs)
    return run


# The model methods labelled, with their phase; the innermost label wins. Private ones are the
# library's batch paths (gnn/models), labelled where a model has them.
PHASE_OF_METHOD = (("loss", "loss"), ("_loss_rows", "readout"), ("batch_embeddings", "readout"),
                   ("_batch_parts", "readout"), ("propagate", "propagate"),
                   ("_layers", "propagate"), ("readout", "readout"))


def label_model(model) -> None:
    """Wrap the model's phases in profiler labels (instance attributes; the class is intact)."""
    for method, phase in PHASE_OF_METHOD:
        if hasattr(model, method):
            setattr(model, method, _labelled(getattr(model, method), phase))


def _is_python_function(name: str) -> bool:
    """A torch.autograd.Function of the library (its forward or backward node): its ops are
    shown one by one instead of as one row."""
    return not name.startswith(("aten::", "gnn::", "autograd::", "Optimizer.", "torch::",
                                "GeneratedBackward", LABEL)) and not name[:1].islower() \
        and not name.endswith(("Backward0", "Backward1"))


def op_label(event) -> str:
    name = event.name
    if name.startswith("autograd::engine::evaluate_function: "):
        node = name.split(": ", 1)[1]
        for junk in ("GeneratedBackwardFor_gnn_", "_defaultBackward", "torch::autograd::"):
            node = node.replace(junk, "")
        return "∂ " + (node[:-len("Backward0")] if node.endswith("Backward0") else node)
    if name.startswith("Optimizer."):
        return name.split("#", 1)[1]
    short = name.split("::", 1)[1] if "::" in name else name
    dims = [s for s in event.input_shapes if isinstance(s, list) and len(s) == 2]
    return f"{short} {dims[-1][0]}x{dims[-1][1]}" if dims else short


def step_rows(step, model: ByteModel):
    """``[(phase, label, seconds, cost)]`` of one profiled step, in order."""
    rows = []

    def visit(events, phase, prefix=""):
        for e in events:
            if e.name.startswith(LABEL):
                visit(e.cpu_children, e.name[len(LABEL):], prefix)
                continue
            if e.name.startswith("Optimizer."):
                ph = "optimizer"
            elif e.name.startswith("autograd::engine"):
                ph = "backward"
                node = e.cpu_children[0] if len(e.cpu_children) == 1 else None
                if node is not None and _is_python_function(node.name):
                    visit(node.cpu_children, ph, "∂ " + node.name.replace("Backward", "") + ": ")
                    continue
            elif e.name in ("gnn::csr_spmm", "gnn::ngcf_layer_fwd") and phase != "backward":
                ph = "propagate"  # wherever the model calls it from
            else:
                ph = phase
            if _is_python_function(e.name) and e.cpu_children:
                visit(e.cpu_children, ph, e.name + ": ")
                continue
            rows.append((ph, prefix + op_label(e), e.time_range.elapsed_us() * 1e-6,
                         model.cost(e)))

    visit(step.cpu_children, "forward (other)")
    return rows


def _keyed(rows):
    """``{(phase, label, occurrence): (seconds, cost)}`` of one step's rows."""
    seen, out = defaultdict(int), {}
    for phase, label, sec, cost in rows:
        key = (phase, label, seen[(phase, label)])
        seen[(phase, label)] += 1
        out[key] = (sec, cost)
    return out


def median_rows(steps_rows, cost_rows):
    """Median seconds per (phase, label, occurrence) over the timed steps, with the cost the
    memory-recording pass (``cost_rows``, one step) gives the same op."""
    table = defaultdict(list)
    for rows in steps_rows:
        for key, (sec, _) in _keyed(rows).items():
            table[key].append(sec)
    costs = _keyed(cost_rows)
    n = len(steps_rows)
    return [(k[0], k[1], statistics.median(v + [0.0] * (n - len(v))),
             costs.get(k, (0.0, Cost()))[1]) for k, v in table.items()]


def sampling_seconds(trainer, repeats: int = 3) -> float:
    """Seconds of one epoch's draws (positives, then negatives), median of ``repeats``."""
    times = []
    for r in range(repeats):
        gen = torch.Generator().manual_seed(r)
        start = time.perf_counter()
        users, _ = trainer.positives.epoch(gen)
        trainer.negatives.sample(users, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def profile_steps(trainer, batch, steps: int, warmup: int, memory: bool = False):
    """The profiled steps' top events. ``memory`` also records allocations (the byte model
    needs them for ``cat``), which slows allocating ops down: a separate, untimed pass."""
    u, i, j = batch
    for _ in range(warmup):
        trainer.train_step(u, i, j)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True,
                 profile_memory=memory) as prof:
        for _ in range(steps):
            with record_function("## step"):
                trainer.train_step(u, i, j)
    return [e for e in prof.events() if e.name == "## step"]


def unprofiled_seconds(trainer, batch, steps: int) -> float:
    """Median wall seconds of a step without the profiler (its own cost is in the rows)."""
    u, i, j = batch
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.train_step(u, i, j)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _gbs(cost: Cost, sec: float) -> str:
    return f"{cost.bytes / sec / 1e9:.1f}" if sec > 0 and cost.bytes else "–"


def _x(cost: Cost, sec: float) -> str:
    return f"{sec / cost.floor:.1f}" if cost.floor > 1e-6 else "–"


def _mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:.1f}" if nbytes else "–"


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def render(args, trainer, ceil, rows, step_secs, sample_sec, n_batches, load, plain) -> str:
    adj = trainer.model.adj
    step = statistics.median(step_secs)
    sample_step = sample_sec / n_batches
    total = step + sample_step
    by_phase = defaultdict(lambda: [0.0, Cost()])
    for phase, _, sec, cost in rows:
        by_phase[phase][0] += sec
        by_phase[phase][1] = by_phase[phase][1] + cost
    by_phase["gaps"][0] = max(0.0, step - sum(r[2] for r in rows))
    by_phase["sampling"][0] = sample_step
    floor = sum(c.floor for _, _, _, c in rows)
    cmd = (f"python -m bench.step_profile --dataset {args.dataset} --model {args.model} "
           f"--batch {args.batch} --steps {args.steps}")
    out = [f"# Step profile: {args.model} on {args.dataset}", "",
           f"`{cmd}` at commit {git_commit()}, {time.strftime('%Y-%m-%d %H:%M')}: "
           f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}, "
           f"{torch.get_num_threads()} threads; load average {load[0]} before, {load[1]} after "
           f"(1-minute; the machine has {os.cpu_count()} cores).", "",
           f"Graph: N = {adj.n_nodes:,} nodes ({adj.n_users:,} users + {adj.n_items:,} items), "
           f"nnz = {adj.nnz:,}; d = {trainer.config.dim}, {trainer.config.layers} layers, "
           f"batch {args.batch} ({n_batches} steps per epoch), float32. Median of {args.steps} "
           f"profiled steps after {args.warmup} warm-up steps.", "",
           "## Ceilings, measured in this run", "",
           "| ceiling | working set | rate |", "|---|---|---|",
           f"| copy (read + write) | N x d = {ceil['table_nd_bytes'] / 1e6:.1f} MB | "
           f"{ceil['copy_nd']:.1f} GB/s |",
           f"| copy (read + write) | {ceil['table_dram_bytes'] / 1e6:.0f} MB (> 4 x LLC of "
           f"{ceil['llc_bytes'] / 2**20:.0f} MiB) | {ceil['copy_dram']:.1f} GB/s |",
           f"| random-row gather (index_select, d = 64) | table N x d | "
           f"{ceil['gather_nd']:.1f} GB/s |",
           f"| random-row gather (index_select, d = 64) | table {ceil['table_dram_bytes'] / 1e6:.0f}"
           f" MB | {ceil['gather_dram']:.1f} GB/s |",
           f"| random-row gather-reduce (embedding_bag sum, bags of 16) | table N x d | "
           f"{ceil['gather_reduce_nd']:.1f} GB/s |",
           f"| random-row gather-reduce (embedding_bag sum, bags of 16) | table "
           f"{ceil['table_dram_bytes'] / 1e6:.0f} MB | {ceil['gather_reduce_dram']:.1f} GB/s |",
           f"| GEMM (4096 x 256) @ (256 x 256) | – | {ceil['gemm']:.0f} GFLOP/s |", "",
           "Floors use the N x d ceilings (the step's tensors are that size); an SpMM's gathered "
           "rows count against gather-reduce (read, not written), other gathers and scatters "
           "against gather.", "",
           "## Where the time goes", "",
           f"Step {total * 1e3:.2f} ms including sampling (training {step * 1e3:.2f} ms + "
           f"sampling {sample_step * 1e3:.2f} ms); the ops' floors add up to {floor * 1e3:.2f} ms "
           f"({step / floor:.1f}x). Without the profiler the same step takes "
           f"{plain * 1e3:.2f} ms" + (
               f": the profiler's own cost ({100 * (step / plain - 1):.0f}%) is in the rows below, "
               f"most of it on ops made of many small ones (the NGCF layer's row blocks)."
               if step >= plain else " (slower than profiled: page faults or load in the plain "
               "steps; read the load average).") if floor else "", "",
           "| phase | ms | % of step | MB moved | GB/s | floor ms | x floor |",
           "|---|---|---|---|---|---|---|"]
    for phase in PHASES:
        if phase not in by_phase:
            continue
        sec, cost = by_phase[phase]
        out.append(f"| {phase} | {sec * 1e3:.2f} | {100 * sec / total:.0f}% | {_mb(cost.bytes)} | "
                   f"{_gbs(cost, sec)} | {cost.floor * 1e3:.2f} | {_x(cost, sec)} |")
    out += ["", "## Every op, largest first", "",
            "| phase | op | ms | % | MB stream | MB gather | GB/s | floor ms | x floor |",
            "|---|---|---|---|---|---|---|---|---|"]
    ranked = sorted(rows, key=lambda r: -r[2])
    shown = [r for r in ranked if r[2] >= 0.005 * step][:40]
    for phase, label, sec, cost in shown:
        out.append(f"| {phase} | {label} | {sec * 1e3:.3f} | {100 * sec / total:.1f}% | "
                   f"{_mb(cost.stream)} | {_mb(cost.gather)} | {_gbs(cost, sec)} | "
                   f"{cost.floor * 1e3:.3f} | {_x(cost, sec)} |")
    rest = ranked[len(shown):]
    if rest:
        sec = sum(r[2] for r in rest)
        out.append(f"| | {len(rest)} smaller ops | {sec * 1e3:.3f} | {100 * sec / total:.1f}% "
                   f"| | | | | |")
    excess = sorted(rows, key=lambda r: -(r[2] - r[3].floor))[:3]
    out += ["", "Largest excess over the floor: " + "; ".join(
        f"{label} ({phase}) {(sec - cost.floor) * 1e3:.2f} ms above its floor"
        for phase, label, sec, cost in excess) + ".", ""]
    return "\n".join(out)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="ml-latest-small")
    p.add_argument("--model", default="lightgcn", choices=("ngcf", "lightgcn", "mf"))
    p.add_argument("--batch", type=int, default=None, help="default: the trainer's (2048)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    ds = graphs.dataset(args.dataset)
    cfg = TrainConfig(model=args.model, dataset=args.dataset, device="cpu", progress=False,
                      **({"batch_size": args.batch} if args.batch else {}))
    args.batch = cfg.batch_size
    trainer = Trainer(cfg, ds, log=lambda *a: None)
    ceil = ceilings.measure(trainer.model.adj.n_nodes, cfg.dim)
    param_bytes = sum(q.numel() * q.element_size() for q in trainer.model.parameters())
    model = ByteModel(ceil, param_bytes)
    label_model(trainer.model)
    loss_fn = model_base.bpr_loss
    model_base.bpr_loss = _labelled(loss_fn, "loss")
    try:
        batch = graphs.fixed_batch(ds, "cpu", cfg.batch_size)
        steps = profile_steps(trainer, batch, args.steps, args.warmup)
        costed = profile_steps(trainer, batch, 1, 0, memory=True)[0]
    finally:
        model_base.bpr_loss = loss_fn
    for method, _ in PHASE_OF_METHOD:  # back to the class's methods for the plain timing
        trainer.model.__dict__.pop(method, None)
    plain = unprofiled_seconds(trainer, batch, args.steps)
    rows = median_rows([step_rows(s, model) for s in steps], step_rows(costed, model))
    step_secs = [s.time_range.elapsed_us() * 1e-6 for s in steps]
    sample_sec = sampling_seconds(trainer)
    n_batches = -(-trainer.n_train // cfg.batch_size)
    load = (f"{load_before:.2f}", f"{os.getloadavg()[0]:.2f}")
    text = render(args, trainer, ceil, rows, step_secs, sample_sec, n_batches, load, plain)
    print(text)
    out = Path(args.out or f"results/cpu/step_profile-{args.dataset}-{args.model}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
