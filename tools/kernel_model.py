"""How tools/kernel_static.py reads and models a compiled kernel, whatever the kernel: compile
as the runtime JIT would, the Triton wheel's ``ptxas -v`` and ``cuobjdump -sass``, SASS loops by
instruction class, occupancy, an L2 model of gathered rows and the roofline of a launch:
``t = max(HBM bytes / HBM BW, L2 bytes / L2 BW, warp-instr / (SMs * 4 * clock), MMA FLOPs / peak)``,
the largest term naming the bound. Every assumption is in ``ASSUMPTIONS`` (and the report).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

H200 = dict(sms=132, clock_hz=1.98e9, schedulers=4, hbm_bps=4.8e12, l2_bytes=50e6,
            l2_bps=(5.5e12, 7.3e12), fp32_flops=66.9e12,
            tensor_flops={"tf32": 494.7e12, "bf16": 989.4e12})
SM_LIMITS = {90: dict(regs=65536, smem=228 << 10, smem_block=227 << 10, warps=64, blocks=32),
             80: dict(regs=65536, smem=164 << 10, smem_block=163 << 10, warps=64, blocks=32)}
ASSUMPTIONS = [
    "H200 SXM as NVIDIA publishes it: 132 SMs, 1.98 GHz boost, HBM3e 4.8 TB/s, 50 MB L2 (H100's), "
    "dense tensor peaks 494.7 TFLOPS TF32 / 989.4 BF16, 66.9 TFLOPS FP32 on the CUDA cores.",
    "L2 bandwidth is unpublished: low 5.5 TB/s, about what a public microbenchmark (Chips and Cheese, "
    "2023) read from an H100 PCIe's L2 (114 SMs, <= 1.755 GHz; recalled, not re-measured); high 7.3 "
    "TB/s, that scaled to 132 SMs at 1.98 GHz. Estimates take the low figure; the device run is to "
    "calibrate it.",
    "Issue: 1 warp-instruction per scheduler per clock, 4 per SM, no stalls. The estimate is the largest "
    "bound (all overlapped, a floor); the serial time adds memory, issue and tensor time (no overlap, a "
    "ceiling). No latency term: a program's steps wait on gathers, which overlap across programs only. "
    "Occupancy is reported beside them (sm_80: A100 limits).",
    "Warp-instructions: static SASS counts, a loop body once per iteration, code outside loops once per "
    "program (both sides of a branch; diverged-warp fallbacks left out), times the warps.",
    "Tensor time: HMMA/HGMMA FLOPs at the dense peak (mma.sync reaches less on Hopper).",
    "Bytes: streams (indices, values, dense inputs and outputs) once from HBM; re-reads (weights per "
    "program, S or indices again) from L2, never L1; every gathered row through L2, missing on first "
    "use and then as an LRU of 50 MB under independent references predicts (Che's approximation on "
    "the column counts = row degrees, A symmetric).",
    "Unfused NGCF layer: the Triton SpMM and the torch ops of kernels/ngcf_layer.py's composed path "
    "(float32 math; fp32 GEMMs on CUDA cores, torch's default keeps TF32 off), each op max(HBM bytes, "
    "FLOPs). No launch overheads on either side.",
]


def compile_case(fn, args: dict, constexprs: dict, num_warps: int, num_stages: int, maxnreg, arch):
    """``triton.compile`` for sm_<arch>, each run-time argument specialised by the runtime's own
    ``native_specialize_impl`` (args: a torch dtype for a pointer, a value for a scalar): 16-byte
    aligned pointers and integers divisible by 16 get tt.divisibility, an int equal to 1 becomes
    a constexpr. ``maxnreg``: the launch's register cap (None: ptxas's own choice)."""
    import triton
    from triton._C.libtriton import native_specialize_impl
    from triton.backends.compiler import BaseBackend, GPUTarget
    from triton.compiler import ASTSource

    sig, attrs, consts = {}, {}, {}
    for i, name in enumerate(fn.arg_names):
        if name in constexprs:
            sig[name], consts[(i,)] = "constexpr", constexprs[name]
            continue
        value = args[name]
        value = torch.empty(4, dtype=value) if isinstance(value, torch.dtype) else value
        sig[name], spec = native_specialize_impl(BaseBackend, value, False, True, True)
        if sig[name] == "constexpr":
            consts[(i,)] = spec
        elif isinstance(spec, str):
            attrs[(i,)] = BaseBackend.parse_attr(spec)
    src = ASTSource(fn=fn, signature=sig, constexprs=consts, attrs=attrs)
    return triton.compile(src, target=GPUTarget("cuda", arch, 32),
                          options=dict(num_warps=num_warps, num_stages=num_stages,
                                       **({"maxnreg": maxnreg} if maxnreg else {})))


def _tool(arch: int, name: str = "") -> str:  # the wheel's ptxas (or a tool beside it)
    from triton.backends.nvidia.compiler import get_ptxas

    return str(Path(get_ptxas(arch).path).with_name(name)) if name else get_ptxas(arch).path


def ptxas_info(ptx: str, arch: int) -> dict:
    """Registers, stack and spill bytes, static shared memory: ``ptxas -v`` with Triton's flags."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "k.ptx").write_text(ptx)
        log = subprocess.run([_tool(arch), "-lineinfo", "-v", "--regAllocOptLevel=2",
                              f"--gpu-name=sm_{arch}{'a' if arch >= 90 else ''}", f"{tmp}/k.ptx",
                              "-o", f"{tmp}/k.o"], capture_output=True, text=True, check=True).stderr
    num = lambda pat: int(m.group(1)) if (m := re.search(pat, log)) else 0  # noqa: E731
    return dict(registers=num(r"Used (\d+) registers"), stack_bytes=num(r"(\d+) bytes stack"),
                spill_bytes=dict(store=num(r"(\d+) bytes spill stores"),
                                 load=num(r"(\d+) bytes spill loads")),
                static_shared_bytes=num(r"(\d+) bytes smem"))


def analyse(ptx: str, cubin: bytes, arch: int, cache: Path):
    """(ptxas_info, SASS text) of a compiled kernel, cached in ``cache`` by PTX (both are slow)."""
    import triton

    key = hashlib.sha256(f"{triton.__version__} {arch} {ptx}".encode()).hexdigest()[:32]
    path = cache / "sass" / f"{key}.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([ptxas_info(ptx, arch), sass_text(cubin)]))
    return json.loads(path.read_text())


def sass_text(cubin: bytes) -> str:
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        return subprocess.run([_tool(80, "cuobjdump"), "-sass", f.name], capture_output=True,
                              text=True, check=True).stdout


_INSTR = re.compile(r"^\s*/\*([0-9a-f]+)\*/\s+(@!?U?P[T0-9]\s+)?([A-Z][A-Za-z0-9_.]*)([^;]*);", re.M)
_INT = {"IMAD", "IADD3", "IADD", "VIADD", "LEA", "SHF", "LOP3", "SGXT", "IMNMX", "VIMNMX", "IABS",
        "BMSK", "FLO", "POPC", "BREV"}
_MASK_MOVE = {"ISETP", "FSETP", "SEL", "FSEL", "MOV", "CS2R", "PLOP3", "P2R", "R2P", "S2R",
              "S2UR", "LDC", "R2UR", "VOTE", "PRMT"}
_CLASSES = dict(LDGSTS="async", LDGDEPBAR="async", DEPBAR="async", UTMALDG="async",
                UBLKCP="async", SYNCS="async", LDS="LDS", LDSM="LDS", STS="STS", STSM="STS", BAR="BAR",
                SHFL="SHFL", HMMA="MMA", HGMMA="MMA", FFMA="FFMA", FMUL="FMUL", FADD="FADD",
                STG="STG", F2F="cvt", F2FP="cvt", I2F="cvt", F2I="cvt", I2FP="cvt", BRA="branch",
                EXIT="branch", STL="local", LDL="local")


def op_class(op: str) -> str:
    """Class of a SASS opcode: LDG by width ('LDG.128'), async copies, LDS, STS, BAR, SHFL,
    MMA, FFMA/FMUL/FADD, STG, cvt, int (address arithmetic), mask/move, local (spills), other."""
    base, suffixes = op.split(".")[0], op.split(".")[1:]
    if base == "LDG":
        return "LDG." + next((w for w in ("128", "64", "16", "8")
                              if any(s.endswith(w) for s in suffixes)), "32")
    core = base[1:] if base.startswith("U") else base
    return _CLASSES.get(base) or ("int" if core in _INT else
                                  "mask/move" if core in _MASK_MOVE else "other")


def mma_flops(op: str) -> tuple:
    """(precision, FLOPs per warp-instruction) of an MMA opcode: HMMA.1688.F32.TF32 -> ('tf32',
    2048); HGMMA.64x64x8.F32.TF32 is a warpgroup's (4 warps) 64x64x8 product -> 8192 each."""
    parts = op.split(".")
    prec, shape = ("tf32" if "TF32" in parts else "bf16"), (parts + [""])[1]
    if parts[0] == "HMMA" and shape.startswith("168"):
        return prec, 2 * 16 * 8 * int(shape[3:])
    if parts[0] == "HGMMA" and shape.count("x") == 2:
        return prec, math.prod(int(v) for v in shape.split("x")) // 2
    return prec, 0


def _target(rest: str):
    m = re.match(r"\s*(?:UR\d+,\s*)?0x([0-9a-f]+)", rest)
    return int(m.group(1), 16) if m else None


def sass_loops(sass: str) -> dict:
    """Loops (a branch back to a lower address; body = the address span less nested loops) and
    the code outside them: instructions, classes and MMA FLOPs per execution. Code reached only
    through BRA.DIV (the diverged-warp fallback) and NOP padding are left out."""
    ins = [(int(a, 16), bool(p), op, rest) for a, p, op, rest in _INSTR.findall(sass)]
    index, seen, todo = {a: i for i, (a, *_) in enumerate(ins)}, set(), [0]
    while todo:  # reachability without the BRA.DIV edges
        i = todo.pop()
        if i in seen or i >= len(ins):
            continue
        seen.add(i)
        _, pred, op, rest = ins[i]
        todo += [index[_target(rest)]] if op == "BRA" and _target(rest) in index else []
        todo += [i + 1] if pred or op not in ("BRA", "EXIT") else []
    live = [ins[i] for i in sorted(seen) if ins[i][2] != "NOP"]
    back = {}
    for a, _, op, rest in live:
        if op == "BRA" and (t := _target(rest)) is not None and t < a:
            back[t] = max(back.get(t, 0), a)
    spans = sorted(back.items())
    parts = [dict(start=hex(s), end=hex(e)) for s, e in spans] + [{}]
    for part in parts:
        part.update(instructions=0, classes={}, flops={})
    for a, _, op, _ in live:
        inside = [i for i, (s, e) in enumerate(spans) if s <= a <= e]
        part = parts[max(inside, key=lambda i: spans[i][0]) if inside else -1]
        cls = op_class(op)
        part["instructions"] += 1
        part["classes"][cls] = part["classes"].get(cls, 0) + 1
        if cls == "MMA":
            prec, fl = mma_flops(op)
            part["flops"][prec] = part["flops"].get(prec, 0) + fl
    return dict(loops=parts[:-1], outside=parts[-1])


def gather_loops(sass, lengths, rows, repeat=1, others=()):
    """(iterations of each SASS loop, sum of the blocks' longest items), blocks of ``rows`` items
    (``lengths``, longest first) stepped ``repeat`` times. Loops without FFMA or with MMA take
    ``others``; the last gather loop is the masked one (to each block's longest item), the ones
    before it the unmasked steps (to its shortest), which ptxas may split into a 1-step remainder
    and a loop of U steps (U from their FFMA counts). [] on another structure."""
    first = np.arange(0, lengths.size, rows)
    longest, shortest = lengths[first], lengths[np.minimum(first + rows, lengths.size) - 1]
    loops, others = sass["loops"], iter(others)
    gather = [i for i, x in enumerate(loops) if "FFMA" in x["classes"] and "MMA" not in x["classes"]]
    if not 2 <= len(gather) <= 3:
        return []
    out = [None if i in gather else next(others) for i in range(len(loops))]
    u = loops[gather[-2]]["classes"]["FFMA"] // loops[gather[0]]["classes"]["FFMA"]
    out[gather[-1]] = int((longest - shortest).sum()) * repeat
    out[gather[0]] = int((shortest % u if u > 1 else shortest).sum()) * repeat
    if u > 1:
        out[gather[1]] = int((shortest // u).sum()) * repeat
    return out, int(longest.sum())


def occupancy(registers: int, shared_bytes: int, num_warps: int, arch: int = 90) -> dict:
    """Resident blocks per SM under the register (256 per warp granularity), shared memory
    (+1 KB reserved per block), warp and block limits."""
    lim = SM_LIMITS[arch]
    regs_per_warp = math.ceil(max(registers, 1) * 32 / 256) * 256
    limits = {"warps": lim["warps"] // num_warps, "blocks": lim["blocks"],
              "registers": lim["regs"] // regs_per_warp // num_warps,
              "shared": 0 if shared_bytes > lim["smem_block"] else lim["smem"] // (shared_bytes + 1024)}
    blocks = min(limits.values())
    return dict(blocks_per_sm=blocks, warps_per_sm=blocks * num_warps,
                fraction=blocks * num_warps / lim["warps"], limited_by=min(limits, key=limits.get))


def lru_misses(counts: np.ndarray, row_bytes: int, capacity: float = H200["l2_bytes"]) -> float:
    """Expected misses of row references (row i used counts[i] times, random order) in an LRU
    of ``capacity`` bytes: a first use always misses, a later one with probability exp(-p_i t),
    p_i = counts[i] / sum(counts), t solving sum_i (1 - exp(-p_i t)) = rows held (Che)."""
    counts = counts[counts > 0].astype(np.float64)
    held = capacity / max(row_bytes, 32)
    if counts.size <= held:
        return float(counts.size)
    p, lo, hi = counts / counts.sum(), 0.0, 1.0
    while np.sum(1 - np.exp(-p * hi)) < held:
        hi *= 2
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.sum(1 - np.exp(-p * mid)) < held else (lo, mid)
    return float(np.sum(1 + (counts - 1) * np.exp(-p * lo)))


def roofline(warp_instr: float, tensor: dict, l2_bytes: float, hbm_bytes: float, hw=H200) -> dict:
    """µs of each bound, the estimate (the largest, with the low L2 figure: all overlapped) and
    its name, and the serial time (memory, issue and tensor one after another)."""
    t = dict(hbm=hbm_bytes / hw["hbm_bps"], l2=l2_bytes / hw["l2_bps"][0],
             issue=warp_instr / (hw["sms"] * hw["schedulers"] * hw["clock_hz"]),
             tensor=sum(f / hw["tensor_flops"][p] for p, f in tensor.items()))
    bound = max(t, key=t.get)
    serial = max(t["hbm"], t["l2"]) + t["issue"] + t["tensor"]  # nothing overlaps: an upper bound
    return dict({f"{k}_us": v * 1e6 for k, v in t.items()}, estimate_us=t[bound] * 1e6, bound=bound,
                serial_us=serial * 1e6, l2_us_high_bw=l2_bytes / hw["l2_bps"][1] * 1e6,
                hbm_bytes=hbm_bytes, l2_bytes=l2_bytes)


_MISSES: dict = {}


def evaluate(sass: dict, work: dict, num_warps: int, g) -> dict:
    """Warp-instructions, MMA FLOPs and bytes of one launch on graph g (``work``: what the
    kernel table says the launch does there), and its roofline."""
    if len(work["loops"]) != len(sass["loops"]):
        return dict(model=f"the SASS has {len(sass['loops'])} loops, the table {len(work['loops'])}")
    pairs = [(work["programs"], sass["outside"])] + list(zip(work["loops"], sass["loops"]))
    warp = num_warps * sum(it * part["instructions"] for it, part in pairs)
    tensor = {}
    for it, part in pairs:
        for prec, fl in part["flops"].items():
            tensor[prec] = tensor.get(prec, 0) + num_warps * it * fl
    rb, misses = work["row_bytes"], 0.0
    if work["gathers"]:
        if (g.name, rb) not in _MISSES:
            _MISSES[(g.name, rb)] = lru_misses(g.deg, rb)
        misses = _MISSES[(g.name, rb)] * work["gathers"] / g.nnz
    r = roofline(warp, tensor, work["stream_bytes"] + work.get("reread_bytes", 0)
                   + work["gathers"] * rb, work["stream_bytes"] + misses * rb)
    lanes = work["lanes"]
    return dict(r, warp_instructions_per_nnz=warp / g.nnz, programs=work["programs"],
                tensor_flops=sum(tensor.values()), mma_per_useful_flop=work.get("useful_flops")
                and sum(tensor.values()) / work["useful_flops"],
                loop_iterations=work["loops"],
                useful_lane_fraction=lanes[0] / lanes[1] if lanes and lanes[1] else None)


def unfused_ngcf_torch_us(n: int, d: int, elem_bytes: int, hw=H200) -> dict:
    """µs of the torch ops of the composed NGCF layer (kernels/ngcf_layer.py's composed_forward /
    composed_backward with ngcf_step.py, d_in = d_out = d, float32 math) without its SpMMs.
    Each op is (read, write, FLOPs) in units of one N x d fp32 tensor (t) and one N x d x d
    GEMM (g); the casts (c) exist only for a 16-bit e."""
    t, g = n * d * 4.0, 2.0 * n * d * d
    c = n * d * (elem_bytes + 4.0) if elem_bytes != 4 else 0.0
    fwd = [(0, c, 0), (2 * t, t, 0), (2 * t, t, 0), (t, t, g), (t, t, g), (2 * t, t, 0),
           (t, t, 0), (0, 2 * c, 0)]  # e cast, U1, U2, U1 W1 + b, U2 W2, +, LeakyReLU, casts
    bwd = [(0, 4 * c, 0), (2 * t, t, 0), (t, 2 * t, 2 * g), (3 * t, t, 0), (3 * t, t, 0),
           (2 * t, t, 0), (2 * t, t, 0), (2 * t, 2 * t, 0), (3 * t, 0, 2 * g), (t, 0, 0)]
    # casts, dZ, [dU1 | dU2], dS, dE_local, U1, U2, [U1 | U2], [dW1; dW2], db
    us = lambda ops: 1e6 * sum(max((r + w) / hw["hbm_bps"], f / hw["fp32_flops"])  # noqa: E731
                               for r, w, f in ops)
    return {"forward": us(fwd), "backward": us(bwd)}
