"""Where one CPU training step's time goes, op by op, against the machine's own ceilings.

    python -m bench.tools.step_profile --dataset gowalla --model lightgcn [--batch 1024] [--steps 10]

``gnn.Trainer.train_step`` (``model.loss``, backward, Adam) on a fixed batch under
``torch.profiler`` for ``--steps`` steps after a warm-up, the model's loss / read-out /
propagation methods labelled on this instance only (the library carries no profiling code), then
one more step recording allocations, for the bytes. One row per op (each SpMM or NGCF layer,
read-out and loss op, autograd node, the optimiser): its median time, the bytes it must move by
bench/tools/step_bytes.py, the GB/s that makes and its floor. Sampling (drawn once per epoch) is
timed apart and shown per step. Writes ``results/cpu/step_profile-<dataset>-<model>.md``.
Wall-clock times: read them with the load average printed beside them.
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

from bench import graphs
from bench.tools.step_bytes import ByteModel, Cost, measure_ceilings
from gnn import TrainConfig, Trainer
from gnn.models import base as model_base

LABEL = "## "  # prefix of the labels this tool puts around the model's methods
PHASES = ("sampling", "propagate", "readout", "loss", "forward (other)", "backward", "optimizer", "gaps")
# The model methods labelled, with their phase (the innermost label wins): the public ones and
# the batch paths of gnn/models, where a model has them. The library's op names that are
# propagation wherever they are called from:
PHASE_OF_METHOD = (("loss", "loss"), ("_loss_rows", "readout"), ("batch_embeddings", "readout"),
                   ("_batch_parts", "readout"), ("propagate", "propagate"), ("_layers", "propagate"),
                   ("readout", "readout"))
PROPAGATION_OPS = ("gnn::csr_spmm", "gnn::ngcf_layer_fwd")


def labelled(fn, name):
    def run(*args, **kwargs):
        with record_function(LABEL + name):
            return fn(*args, **kwargs)
    return run


def is_python_function(name: str) -> bool:
    """A torch.autograd.Function of the library (forward or backward node): its ops are shown
    one by one instead of as one row."""
    return not name.startswith(("aten::", "gnn::", "autograd::", "Optimizer.", "torch::",
                                "GeneratedBackward", LABEL)) and not name[:1].islower() \
        and not name.endswith(("Backward0", "Backward1"))


def op_label(event) -> str:
    name = event.name
    if name.startswith("autograd::engine::evaluate_function: "):
        node = name.split(": ", 1)[1]
        for junk in ("GeneratedBackwardFor_gnn_", "_defaultBackward", "torch::autograd::"):
            node = node.replace(junk, "")
        return "∂ " + node.removesuffix("Backward0")
    if name.startswith("Optimizer."):
        return name.split("#", 1)[1]
    dims = [s for s in event.input_shapes if isinstance(s, list) and len(s) == 2]
    short = name.split("::", 1)[-1]
    return f"{short} {dims[-1][0]}x{dims[-1][1]}" if dims else short


def step_rows(step, model: ByteModel) -> list:
    """``[(phase, label, seconds, cost)]`` of one profiled step, in order."""
    rows = []

    def visit(events, phase, prefix=""):
        for e in events:
            if e.name.startswith(LABEL):
                visit(e.cpu_children, e.name[len(LABEL):], prefix)
                continue
            ph = "optimizer" if e.name.startswith("Optimizer.") else "backward" if e.name.startswith(
                "autograd::engine") else "propagate" if e.name in PROPAGATION_OPS and phase != "backward" else phase
            node = e.cpu_children[0] if e.name.startswith("autograd::engine") and len(e.cpu_children) == 1 else None
            if node is not None and is_python_function(node.name):
                visit(node.cpu_children, ph, "∂ " + node.name.replace("Backward", "") + ": ")
            elif is_python_function(e.name) and e.cpu_children:
                visit(e.cpu_children, ph, e.name + ": ")
            else:
                rows.append((ph, prefix + op_label(e), e.time_range.elapsed_us() * 1e-6, model.cost(e)))

    visit(step.cpu_children, "forward (other)")
    return rows


def keyed(rows) -> dict:
    """``{(phase, label, occurrence): (seconds, cost)}`` of one step's rows."""
    seen, out = defaultdict(int), {}
    for phase, label, sec, cost in rows:
        out[(phase, label, seen[(phase, label)])] = (sec, cost)
        seen[(phase, label)] += 1
    return out


def median_rows(steps_rows, cost_rows) -> list:
    """Median seconds per op over the timed steps, with the cost the allocation-recording step
    (``cost_rows``) gives the same op."""
    times, costs = defaultdict(list), keyed(cost_rows)
    for rows in steps_rows:
        for key, (sec, _) in keyed(rows).items():
            times[key].append(sec)
    return [(k[0], k[1], statistics.median(v + [0.0] * (len(steps_rows) - len(v))),
             costs.get(k, (0.0, Cost()))[1]) for k, v in times.items()]


def profile_steps(trainer, batch, steps: int, warmup: int, memory: bool = False) -> list:
    """The profiled steps' events. ``memory`` records allocations (the byte model's ``cat``),
    which slows allocating ops: a separate, untimed pass."""
    for _ in range(warmup):
        trainer.train_step(*batch)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True, profile_memory=memory) as prof:
        for _ in range(steps):
            with record_function("## step"):
                trainer.train_step(*batch)
    return [e for e in prof.events() if e.name == "## step"]


def seconds_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def render(args, trainer, ceil, rows, step, sample_step, n_batches, load, plain) -> str:
    adj, total = trainer.model.adj, step + sample_step
    by_phase = defaultdict(lambda: [0.0, Cost()])
    for phase, _, sec, cost in rows:
        by_phase[phase][0] += sec
        by_phase[phase][1] = by_phase[phase][1] + cost
    by_phase["gaps"][0] = max(0.0, step - sum(r[2] for r in rows))
    by_phase["sampling"][0] = sample_step
    floor = sum(c.floor for _, _, _, c in rows)
    mb = lambda n: f"{n / 1e6:.1f}" if n else "–"  # noqa: E731
    gbs = lambda c, s: f"{c.bytes / s / 1e9:.1f}" if s > 0 and c.bytes else "–"  # noqa: E731
    times_floor = lambda c, s: f"{s / c.floor:.1f}" if c.floor > 1e-6 else "–"  # noqa: E731
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    dram, llc = f"{ceil['table_dram_bytes'] / 1e6:.0f} MB", f"{ceil['llc_bytes'] / 2**20:.0f} MiB"
    bag = "random-row gather-reduce (embedding_bag sum, bags of 16)"
    out = [f"# Step profile: {args.model} on {args.dataset}", "",
           f"`python -m bench.tools.step_profile --dataset {args.dataset} --model {args.model} --batch "
           f"{args.batch} --steps {args.steps}` at commit {commit}, {time.strftime('%Y-%m-%d %H:%M')}: "
           f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}, "
           f"{torch.get_num_threads()} threads; load average {load[0]} before, {load[1]} after "
           f"(1-minute; the machine has {os.cpu_count()} cores).", "",
           f"Graph: N = {adj.n_nodes:,} nodes ({adj.n_users:,} users + {adj.n_items:,} items), nnz = "
           f"{adj.nnz:,}; d = {trainer.config.dim}, {trainer.config.layers} layers, batch {args.batch} "
           f"({n_batches} steps per epoch), float32. Median of {args.steps} profiled steps after "
           f"{args.warmup} warm-up steps.", "", "## Ceilings, measured in this run", "",
           "| ceiling | working set | rate |", "|---|---|---|",
           f"| copy (read + write) | N x d = {ceil['table_nd_bytes'] / 1e6:.1f} MB | {ceil['copy_nd']:.1f} GB/s |",
           f"| copy (read + write) | {dram} (> 4 x LLC of {llc}) | {ceil['copy_dram']:.1f} GB/s |",
           f"| random-row gather (index_select, d = 64) | table N x d | {ceil['gather_nd']:.1f} GB/s |",
           f"| random-row gather (index_select, d = 64) | table {dram} | {ceil['gather_dram']:.1f} GB/s |",
           f"| {bag} | table N x d | {ceil['gather_reduce_nd']:.1f} GB/s |",
           f"| {bag} | table {dram} | {ceil['gather_reduce_dram']:.1f} GB/s |",
           f"| GEMM (4096 x 256) @ (256 x 256) | – | {ceil['gemm']:.0f} GFLOP/s |", "",
           "Floors use the N x d ceilings (the step's tensors are that size); an SpMM's gathered "
           "rows count against gather-reduce (read, not written), other gathers and scatters "
           "against gather.", "", "## Where the time goes", "",
           f"Step {total * 1e3:.2f} ms including sampling (training {step * 1e3:.2f} ms + sampling "
           f"{sample_step * 1e3:.2f} ms); the ops' floors add up to {floor * 1e3:.2f} ms "
           f"({step / max(floor, 1e-12):.1f}x). Without the profiler the same step takes {plain * 1e3:.2f} ms"
           + (f": the profiler's own cost ({100 * (step / plain - 1):.0f}%) is in the rows below, most "
              f"of it on ops made of many small ones (the NGCF layer's row blocks)." if step >= plain else
              " (slower than profiled: page faults or load in the plain steps; read the load average)."),
           "", "| phase | ms | % of step | MB moved | GB/s | floor ms | x floor |", "|---|---|---|---|---|---|---|"]
    for phase in (p for p in PHASES if p in by_phase):
        sec, cost = by_phase[phase]
        out.append(f"| {phase} | {sec * 1e3:.2f} | {100 * sec / total:.0f}% | {mb(cost.bytes)} | "
                   f"{gbs(cost, sec)} | {cost.floor * 1e3:.2f} | {times_floor(cost, sec)} |")
    out += ["", "## Every op, largest first", "",
            "| phase | op | ms | % | MB stream | MB gather | GB/s | floor ms | x floor |",
            "|---|---|---|---|---|---|---|---|---|"]
    ranked = sorted(rows, key=lambda r: -r[2])
    shown = [r for r in ranked if r[2] >= 0.005 * step][:40]
    out += [f"| {phase} | {label} | {sec * 1e3:.3f} | {100 * sec / total:.1f}% | {mb(cost.stream)} | "
            f"{mb(cost.gather)} | {gbs(cost, sec)} | {cost.floor * 1e3:.3f} | {times_floor(cost, sec)} |"
            for phase, label, sec, cost in shown]
    rest = ranked[len(shown):]
    if rest:
        sec = sum(r[2] for r in rest)
        out.append(f"| | {len(rest)} smaller ops | {sec * 1e3:.3f} | {100 * sec / total:.1f}% | | | | | |")
    out += ["", "Largest excess over the floor: " + "; ".join(
        f"{label} ({phase}) {(sec - cost.floor) * 1e3:.2f} ms above its floor"
        for phase, label, sec, cost in sorted(rows, key=lambda r: -(r[2] - r[3].floor))[:3]) + ".", ""]
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
    load_before, ds = os.getloadavg()[0], graphs.dataset(args.dataset)
    cfg = TrainConfig(model=args.model, dataset=args.dataset, device="cpu", progress=False,
                      **({"batch_size": args.batch} if args.batch else {}))
    args.batch, trainer = cfg.batch_size, Trainer(cfg, ds, log=lambda *a: None)
    ceil = measure_ceilings(trainer.model.adj.n_nodes, cfg.dim)
    model = ByteModel(ceil, sum(q.numel() * q.element_size() for q in trainer.model.parameters()))
    for method, phase in PHASE_OF_METHOD:  # instance attributes: the class stays intact
        if hasattr(trainer.model, method):
            setattr(trainer.model, method, labelled(getattr(trainer.model, method), phase))
    loss_fn, model_base.bpr_loss = model_base.bpr_loss, labelled(model_base.bpr_loss, "loss")
    batch = graphs.fixed_batch(ds, "cpu", cfg.batch_size)
    try:
        steps = profile_steps(trainer, batch, args.steps, args.warmup)
        costed = profile_steps(trainer, batch, 1, 0, memory=True)[0]
    finally:
        model_base.bpr_loss = loss_fn
    for method, _ in PHASE_OF_METHOD:  # back to the class's methods for the plain timing
        trainer.model.__dict__.pop(method, None)
    plain = seconds_of(lambda: trainer.train_step(*batch), args.steps)
    rows = median_rows([step_rows(s, model) for s in steps], step_rows(costed, model))
    step = statistics.median(s.time_range.elapsed_us() * 1e-6 for s in steps)

    seeds = iter(range(3))

    def draw_epoch():  # one epoch's positives and negatives, as the trainer draws them
        users, _ = trainer.positives.epoch(torch.Generator().manual_seed(next(seeds)))
        trainer.negatives.sample(users, check=False)

    n_batches = -(-trainer.n_train // cfg.batch_size)
    text = render(args, trainer, ceil, rows, step, seconds_of(draw_epoch, 3) / n_batches, n_batches,
                  (f"{load_before:.2f}", f"{os.getloadavg()[0]:.2f}"), plain)
    print(text)
    out = Path(args.out or f"results/cpu/step_profile-{args.dataset}-{args.model}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
