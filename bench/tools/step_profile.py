"""Where one CPU training step's time goes, op by op, against this machine's own ceilings.

    python -m bench.tools.step_profile --dataset gowalla --model lightgcn [--batch B] [--steps 10]

``Trainer.train_step`` on a fixed batch under ``torch.profiler``, after a warm-up; the model's
loss, read-out and propagation methods are labelled on this instance only (the library carries no
profiling code), the ops inside its autograd Functions shown one by one. Per op: the median time;
for the ops whose traffic is modelled, the bytes they move, the GB/s and the floor the ceilings
measured in the same run allow: an SpMM (``gnn::csr_spmm``, ``embedding_bag``, a CSR matmul)
streams its indices and output and gathers nnz rows of x (floor: stream / copy + gather /
gather-reduce); a dense product moves both operands and its output (floor: the larger of bytes /
copy and flops / GEMM); index_select / index_add_ gather or scatter rows (gather); a fused Adam
step moves 7 × the parameters (copy). Writes ``results/cpu/step_profile-<dataset>-<model>.md``.
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
from gnn import TrainConfig, Trainer
from gnn.models import base as model_base

LABEL = "## "  # prefix of the labels this tool puts around the model's methods
PHASES = ("sampling", "propagate", "readout", "loss", "forward (other)", "backward", "optimizer",
          "gaps")
# The model methods labelled, with their phase (the innermost label wins): the public ones and
# the batch paths of gnn/models where a model has them; and the library's ops that count as
# propagation wherever they are called from.
PHASE_OF_METHOD = (("loss", "loss"), ("_loss_rows", "readout"), ("batch_embeddings", "readout"),
                   ("_batch_parts", "readout"), ("propagate", "propagate"),
                   ("_layers", "propagate"), ("readout", "readout"))
PROPAGATION_OPS = ("gnn::csr_spmm", "gnn::ngcf_layer_fwd")
ELEMENT_BYTES = {"float": 4, "double": 8, "long int": 8, "int": 4, "c10::BFloat16": 2,
                 "c10::Half": 2}


def median_seconds(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ceilings(n_nodes: int, dim: int, repeats: int = 15) -> dict:
    """Bytes/s of a copy, a random-row gather (index_select) and gather-reduce (embedding_bag
    sum of bags of 16: rows read, not written, as an SpMM reads x) on an N × d float32 table;
    flops/s of a (4096 × 256) @ (256 × 256) product, the NGCF layer's thin shape."""
    gen = torch.Generator().manual_seed(0)
    table, n = torch.randn(n_nodes, dim, generator=gen), max(1 << 20, 4 * n_nodes)
    idx, rows, offsets = torch.randint(n_nodes, (n,), generator=gen), torch.empty(n, dim), \
        torch.arange(0, n, 16)
    copy = table.clone()
    a, b, c = torch.randn(4096, 256), torch.randn(256, 256), torch.empty(4096, 256)
    bag = torch.nn.functional.embedding_bag
    return {"copy": 2 * table.numel() * 4 / median_seconds(lambda: copy.copy_(table), 4 * repeats),
            "gather": (2 * n * dim * 4 + n * 8) / median_seconds(
                lambda: torch.index_select(table, 0, idx, out=rows), repeats),
            "gather_reduce": (n * dim * 4 + n * 8 + offsets.numel() * dim * 4) / median_seconds(
                lambda: bag(idx, table, offsets, mode="sum"), repeats),
            "gemm": 2 * 4096 * 256 * 256 / median_seconds(lambda: torch.mm(a, b, out=c), repeats)}


def _sizes(event):
    """``(numel, element bytes)`` of each tensor input, None for other arguments."""
    return [(int(torch.Size(s).numel()), ELEMENT_BYTES[d]) if d in ELEMENT_BYTES and
            isinstance(s, list) else None for s, d in zip(event.input_shapes, event.input_dtypes)]


def cost(event, ceil: dict, param_bytes: int, csr=None):
    """``(bytes, floor seconds)`` of a modelled op (the module docstring), else None; ``csr`` is
    ``(rows, nnz, index bytes)`` of a CSR operand built just before (a torch CSR matmul)."""
    name, t, shapes = event.name.removeprefix("aten::"), _sizes(event), event.input_shapes
    spmm = None
    if name == "gnn::csr_spmm":
        (n1, b1), (nnz, bc), (_, bv), (nx, bx) = t[:4]
        spmm = (n1 - 1, nnz, n1 * b1 + nnz * (bc + bv), nx // max(shapes[3][0], 1), bx)
    elif name in ("embedding_bag", "_embedding_bag", "_embedding_bag_forward_only") and all(t[:3]):
        (nw, bw), (nnz, bi), (n_off, bo) = t[:3]
        spmm = (n_off - 1, nnz, nnz * (bi + 4) + n_off * bo, nw // max(shapes[0][0], 1), bw)
    elif name in ("mm", "addmm", "matmul") and csr is not None:
        mats = [(i, s) for i, s in enumerate(shapes) if isinstance(s, list) and len(s) == 2]
        spmm = (*csr, mats[-1][1][1], t[mats[-1][0]][1]) if mats else None
    if spmm is not None:
        rows, nnz, index_bytes, dim, elem = spmm
        stream, gather = index_bytes + rows * dim * elem, nnz * dim * elem
        return stream + gather, stream / ceil["copy"] + gather / ceil["gather_reduce"]
    if name in ("mm", "addmm", "matmul"):
        mats = [(i, s) for i, s in enumerate(shapes) if isinstance(s, list) and len(s) == 2][-2:]
        if len(mats) < 2:
            return None
        (ia, (m, k)), (_, (_, n)) = mats
        nbytes = t[ia][1] * (m * k + k * n + m * n) + sum(x[0] * x[1] for x in t[:ia] if x)
        return nbytes, max(nbytes / ceil["copy"], 2.0 * m * k * n / ceil["gemm"])
    if name == "index_select" and t[0] and t[2]:
        (n_idx, bi), row = t[2], t[0][0] // max(shapes[0][0], 1) * t[0][1]
        stream, gather = n_idx * (bi + row), n_idx * row
        return stream + gather, stream / ceil["copy"] + gather / ceil["gather"]
    if name in ("index_add_", "scatter_add_") and len(t) >= 4 and t[2] and t[3]:
        (n_idx, bi), (n_src, bs) = t[2], t[3]
        stream = (n_idx if name == "index_add_" else n_src) * bi + n_src * bs
        return stream + 2 * n_src * bs, stream / ceil["copy"] + 2 * n_src * bs / ceil["gather"]
    if name == "_fused_adam_" or name.startswith("Optimizer.step#"):
        return 7 * param_bytes, 7 * param_bytes / ceil["copy"]
    return None


def is_python_function(name: str) -> bool:
    """A torch.autograd.Function of the library (forward or backward node)."""
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


def step_rows(step, ceil: dict, param_bytes: int) -> list:
    """``[(phase, label, seconds, (bytes, floor) or None)]`` of one profiled step, in order."""
    rows = []

    def visit(events, phase, prefix=""):
        csr = None
        for e in events:
            if e.name.startswith(LABEL):
                visit(e.cpu_children, e.name[len(LABEL):], prefix)
                continue
            if e.name == "aten::sparse_compressed_tensor":  # the CSR operand of the next product
                (n1, b1), (nnz, bc), (_, bv) = _sizes(e)[:3]
                csr = (n1 - 1, nnz, n1 * b1 + nnz * (bc + bv))
            node = e.cpu_children[0] if e.name.startswith("autograd::engine") and \
                len(e.cpu_children) == 1 else None
            ph = "optimizer" if e.name.startswith("Optimizer.") else "backward" if \
                e.name.startswith("autograd::engine") else "propagate" if \
                e.name in PROPAGATION_OPS and phase != "backward" else phase
            if node is not None and is_python_function(node.name):
                visit(node.cpu_children, ph, "∂ " + node.name.replace("Backward", "") + ": ")
            elif is_python_function(e.name) and e.cpu_children:
                visit(e.cpu_children, ph, e.name + ": ")
            else:
                modelled = cost(e, ceil, param_bytes, csr)
                if modelled is None and e.cpu_children and not e.name.startswith("Optimizer."):
                    inner = [cost(c, ceil, param_bytes, csr) for c in e.cpu_children]
                    inner = [x for x in inner if x]
                    modelled = tuple(map(sum, zip(*inner))) if inner else None
                rows.append((ph, prefix + op_label(e), e.time_range.elapsed_us() * 1e-6, modelled))
                if e.name in ("aten::mm", "aten::addmm", "aten::matmul"):
                    csr = None  # the CSR operand belongs to the first product after it

    visit(step.cpu_children, "forward (other)")
    return rows


def median_rows(steps_rows: list) -> list:
    """Median seconds per (phase, label, occurrence) over the profiled steps."""
    times, models = defaultdict(list), {}
    for rows in steps_rows:
        seen = defaultdict(int)
        for phase, label, sec, modelled in rows:
            key = (phase, label, seen[(phase, label)])
            seen[(phase, label)] += 1
            times[key].append(sec)
            models[key] = modelled
    return [(k[0], k[1], statistics.median(v + [0.0] * (len(steps_rows) - len(v))), models[k])
            for k, v in times.items()]


def render(args, trainer, ceil, rows, step, sample_step, n_batches, load, plain) -> str:
    adj, cfg, total = trainer.model.adj, trainer.config, step + sample_step
    phase_ms = defaultdict(float, sampling=sample_step,
                           gaps=max(0.0, step - sum(r[2] for r in rows)))
    for phase, _, sec, _ in rows:
        phase_ms[phase] += sec
    costed = [r for r in rows if r[3]]
    floor, costed_s = sum(r[3][1] for r in costed), sum(r[2] for r in costed)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    profiler = (f"the profiler's own cost ({100 * (step / plain - 1):.0f}%) is in the rows below"
                if step >= plain else "slower than profiled: page faults or load")
    out = [f"# Step profile: {args.model} on {args.dataset}", "",
           f"`python -m bench.tools.step_profile --dataset {args.dataset} --model {args.model} "
           f"--batch {args.batch} --steps {args.steps}` at commit {commit}, "
           f"{time.strftime('%Y-%m-%d %H:%M')}: {platform.machine()} CPU, {os.cpu_count()} cores, "
           f"torch {torch.__version__}, {torch.get_num_threads()} threads; 1-minute load average "
           f"{load[0]} before, {load[1]} after.", "",
           f"Graph: N = {adj.n_nodes:,} ({adj.n_users:,} users + {adj.n_items:,} items), nnz = "
           f"{adj.nnz:,}; d = {cfg.dim}, {cfg.layers} layers, batch {args.batch} ({n_batches} "
           f"steps per epoch), float32. Median of {args.steps} profiled steps after "
           f"{args.warmup} warm-up steps.", "",
           f"Ceilings on an N x d float32 table, measured in this run: copy (read + write) "
           f"{ceil['copy'] / 1e9:.1f} GB/s, random-row gather (index_select) "
           f"{ceil['gather'] / 1e9:.1f} GB/s, gather-reduce (embedding_bag sum, bags of 16) "
           f"{ceil['gather_reduce'] / 1e9:.1f} GB/s; GEMM (4096 x 256) @ (256 x 256) "
           f"{ceil['gemm'] / 1e9:.0f} GFLOP/s.", "",
           f"Step {total * 1e3:.2f} ms including sampling ({sample_step * 1e3:.2f} ms); without "
           f"the profiler the step takes {plain * 1e3:.2f} ms ({profiler}). The modelled ops take "
           f"{costed_s * 1e3:.2f} ms against a floor of {floor * 1e3:.2f} ms.", "",
           "| phase | ms | % of step |", "|---|---|---|"]
    out += [f"| {p} | {phase_ms[p] * 1e3:.2f} | {100 * phase_ms[p] / total:.0f}% |" for p in PHASES
            if p in phase_ms]
    out += ["", "## Every op, largest first", "",
            "| phase | op | ms | % | MB moved | GB/s | floor ms | x floor |",
            "|---|---|---|---|---|---|---|---|"]
    ranked = sorted(rows, key=lambda r: -r[2])
    shown = [r for r in ranked if r[2] >= 0.005 * step][:40]
    for phase, label, sec, m in shown:
        model = ["–"] * 4
        if m:
            model = [f"{m[0] / 1e6:.1f}", f"{m[0] / sec / 1e9:.1f}" if sec else "–",
                     f"{m[1] * 1e3:.3f}", f"{sec / m[1]:.1f}" if m[1] else "–"]
        out.append(f"| {phase} | {label} | {sec * 1e3:.3f} | {100 * sec / total:.1f}% | "
                   + " | ".join(model) + " |")
    if len(ranked) > len(shown):
        sec = sum(r[2] for r in ranked[len(shown):])
        out.append(f"| | {len(ranked) - len(shown)} smaller ops | {sec * 1e3:.3f} | "
                   f"{100 * sec / total:.1f}% | | | | |")
    return "\n".join(out) + "\n"


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
    ceil = ceilings(trainer.model.adj.n_nodes, cfg.dim)
    param_bytes = sum(q.numel() * q.element_size() for q in trainer.model.parameters())
    batch = graphs.fixed_batch(ds, "cpu", cfg.batch_size)
    for _ in range(args.warmup):
        trainer.train_step(*batch)

    def labelled(fn, name):
        def run(*a, **kw):
            with record_function(LABEL + name):
                return fn(*a, **kw)
        return run

    for method, phase in PHASE_OF_METHOD:  # instance attributes: the class stays intact
        if hasattr(trainer.model, method):
            setattr(trainer.model, method, labelled(getattr(trainer.model, method), phase))
    loss_fn, model_base.bpr_loss = model_base.bpr_loss, labelled(model_base.bpr_loss, "loss")
    try:
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(args.steps):
                with record_function("## step"):
                    trainer.train_step(*batch)
    finally:
        model_base.bpr_loss = loss_fn
        for method, _ in PHASE_OF_METHOD:  # back to the class's methods for the plain timing
            trainer.model.__dict__.pop(method, None)
    steps = [e for e in prof.events() if e.name == "## step"]
    rows = median_rows([step_rows(s, ceil, param_bytes) for s in steps])
    seeds = iter(range(3))

    def draw_epoch():  # one epoch's positives and negatives, as the trainer draws them
        users, _ = trainer.positives.epoch(torch.Generator().manual_seed(next(seeds)))
        trainer.negatives.sample(users, check=False)

    n_batches = -(-trainer.n_train // cfg.batch_size)
    text = render(args, trainer, ceil, rows, statistics.median(s.time_range.elapsed_us() * 1e-6
                                                              for s in steps),
                  median_seconds(draw_epoch, 3, warmup=0) / n_batches, n_batches,
                  (f"{load_before:.2f}", f"{os.getloadavg()[0]:.2f}"),
                  median_seconds(lambda: trainer.train_step(*batch), args.steps, warmup=0))
    print(text)
    out = Path(args.out or f"results/cpu/step_profile-{args.dataset}-{args.model}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
