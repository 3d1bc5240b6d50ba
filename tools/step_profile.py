"""Where one CPU training step's time goes, against this machine's own ceilings.

    python -m tools.step_profile --dataset gowalla --model lightgcn [--batch B] [--steps 10]

``Trainer.train_step`` on a fixed batch under ``torch.profiler`` for ``--steps`` steps after a
warm-up. Per step: the forward (``model.loss``), the backward, the optimiser and the rest; then
every op by its own (self) time. The SpMMs (on the CPU ``embedding_bag`` sums of rows, values as
weights) show the GB/s of the rows they gather, ``nnz·d·b`` bytes, next to the gather-reduce
ceiling (``embedding_bag`` of random rows of an N × d table, measured in the same run); dense
products their GFLOP/s next to a (4096 × 256) @ (256 × 256) product's. Sampling (drawn once per
epoch) is timed apart and shown per step. Writes ``results/cpu/step_profile-<dataset>-<model>.md``
(wall-clock times: read them with the load average beside them).
"""
from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from bench import graphs
from bench.measure import time_call
from gnn import TrainConfig, Trainer

SPMM_OPS = ("aten::_embedding_bag", "aten::_embedding_bag_forward_only")
GEMM_OPS = ("aten::mm", "aten::addmm")


def ceilings(n_nodes: int, dim: int, repeats: int = 15) -> tuple:
    """``(gather-reduce bytes/s, GEMM flops/s)``: bags of 16 random rows of an N × d float32
    table summed (rows read, not written, as an SpMM reads x); a thin float32 product."""
    gen = torch.Generator().manual_seed(0)
    table, n = torch.randn(n_nodes, dim, generator=gen), max(1 << 20, 4 * n_nodes)
    idx, offsets = torch.randint(n_nodes, (n,), generator=gen), torch.arange(0, n, 16)
    seconds = time_call(lambda: torch.nn.functional.embedding_bag(idx, table, offsets, mode="sum"),
                        "cpu", repeats)
    a, b, c = torch.randn(4096, 256), torch.randn(256, 256), torch.empty(4096, 256)
    return ((n * dim * 4 + n * 8 + offsets.numel() * dim * 4) / seconds,
            2 * 4096 * 256 * 256 / time_call(lambda: torch.mm(a, b, out=c), "cpu", repeats))


def rate(op, ceil: tuple) -> str:
    """``rate (x of the ceiling)`` of an SpMM or a dense product per call, else "–"."""
    shapes, seconds = op.input_shapes, op.self_cpu_time_total * 1e-6 / op.count
    if op.key in SPMM_OPS and len(shapes) > 1 and len(shapes[0]) == 2 and shapes[1]:
        gbs = shapes[1][0] * shapes[0][1] * 4 / seconds  # nnz rows of the float32 table
        return f"{gbs / 1e9:.1f} GB/s gathered ({ceil[0] / gbs:.1f}x)"
    mats = [s for s in shapes if len(s) == 2]
    if op.key in GEMM_OPS and len(mats) >= 2:
        flops = 2 * mats[-2][0] * mats[-2][1] * mats[-1][1] / seconds
        return f"{flops / 1e9:.0f} GFLOP/s ({ceil[1] / flops:.1f}x)"
    return "–"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="ml-latest-small")
    p.add_argument("--model", default="lightgcn", choices=("ngcf", "lightgcn", "mf"))
    p.add_argument("--batch", type=int, default=None, help="default: the trainer's (2048)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before, ds = os.getloadavg()[0], graphs.dataset(args.dataset)
    cfg = TrainConfig(model=args.model, dataset=args.dataset, device="cpu", progress=False,
                      keep_freed_memory=True,
                      **({"batch_size": args.batch} if args.batch else {}))
    trainer = Trainer(cfg, ds, log=lambda *a: None)
    batch, model = graphs.fixed_batch(ds, "cpu", cfg.batch_size), trainer.model
    ceil = ceilings(model.adj.n_nodes, cfg.dim)
    plain = time_call(lambda: trainer.train_step(*batch), "cpu", args.steps)
    loss = model.loss

    def labelled_loss(*a, **kw):  # on this instance only: the library carries no profiling code
        with record_function("forward (model.loss)"):
            return loss(*a, **kw)

    model.loss = labelled_loss
    try:
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(args.steps):
                with record_function("## step"):
                    trainer.train_step(*batch)
    finally:
        del model.loss
    seeds = itertools.count()

    def draw_epoch():  # one epoch's positives and negatives, as the trainer draws them
        users, _ = trainer.positives.epoch(torch.Generator().manual_seed(next(seeds)))
        trainer.negatives.sample(users, check=False)

    n_batches = -(-trainer.n_train // cfg.batch_size)
    sampling = time_call(draw_epoch, "cpu", 3) / n_batches
    steps = [e for e in prof.events() if e.name == "## step"]
    total = statistics.median(e.time_range.elapsed_us() for e in steps) * 1e-6
    top = [e for s in steps for e in s.cpu_children]  # the step's own calls
    phases = {"forward (model.loss)": "forward (model.loss)", "backward": "autograd::engine",
              "optimizer": "Optimizer.step"}
    phase_s = {name: sum(e.time_range.elapsed_us() for e in top if e.name.startswith(prefix))
               * 1e-6 / len(steps) for name, prefix in phases.items()}
    phase_s["the rest (zero_grad, bookkeeping, gaps)"] = total - sum(phase_s.values())
    phase_s["sampling (per step)"] = sampling
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    step = total + sampling
    adj = model.adj
    out = [f"# Step profile: {args.model} on {args.dataset}", "",
           f"`python -m tools.step_profile --dataset {args.dataset} --model {args.model} "
           f"--batch {cfg.batch_size} --steps {args.steps}` at commit {commit}, "
           f"{time.strftime('%Y-%m-%d %H:%M')}: {platform.machine()} CPU, {os.cpu_count()} cores, "
           f"torch {torch.__version__}, {torch.get_num_threads()} threads; 1-minute load average "
           f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after.", "",
           f"Graph: N = {adj.n_nodes:,} ({adj.n_users:,} users + {adj.n_items:,} items), nnz = "
           f"{adj.nnz:,}; d = {cfg.dim}, {cfg.layers} layers, batch {cfg.batch_size} ({n_batches} "
           f"steps per epoch), float32. Ceilings measured in this run: gather-reduce "
           f"{ceil[0] / 1e9:.1f} GB/s, GEMM {ceil[1] / 1e9:.0f} GFLOP/s.", "",
           f"Step {step * 1e3:.2f} ms profiled, {(plain + sampling) * 1e3:.2f} ms without the "
           f"profiler (sampling included).", "", "| phase | ms per step | % |", "|---|---|---|"]
    out += [f"| {name} | {s * 1e3:.2f} | {100 * s / step:.0f}% |" for name, s in phase_s.items()]
    out += ["", "## Every op by its own time", "",
            "| op | input shapes | calls per step | ms per step | % | rate (ceiling ÷ rate) |",
            "|---|---|---|---|---|---|"]
    ops = sorted(prof.key_averages(group_by_input_shape=True), key=lambda o: -o.self_cpu_time_total)
    for op in [o for o in ops if o.self_cpu_time_total * 1e-6 / args.steps >= 0.005 * step][:30]:
        ms = op.self_cpu_time_total * 1e-3 / args.steps
        shapes = ", ".join("x".join(map(str, s)) for s in op.input_shapes if s)
        out.append(f"| {op.key} | {shapes} | {op.count / args.steps:g} | {ms:.3f} | "
                   f"{100 * ms / 1e3 / step:.1f}% | {rate(op, ceil)} |")
    text = "\n".join(out) + "\n"
    print(text)
    path = Path(args.out or f"results/cpu/step_profile-{args.dataset}-{args.model}.md")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


if __name__ == "__main__":
    main()
