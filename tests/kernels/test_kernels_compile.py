"""Every Triton kernel, in every launch configuration the host code can pick, compiles for
sm_80 (A100) and sm_90 (H100/H200) with ``triton.compile(ASTSource(...), target=GPUTarget(...))``
on this GPU-less machine. A compilation error fails the test.

The configurations come from the same functions the host code uses (``spmm_config``,
``ngcf_config``), over the feature sizes 1..512 it can be called with; the boolean
meta-parameters and the dtypes (fp32 / bf16 / fp16 features, int32 / int64 indices) are
covered value by value (each value of each flag appears, not the full product: keeps the
suite fast; the interpreter tests cover the semantics).
"""
import itertools
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from gnn.kernels import ngcf_triton as NL
from gnn.kernels import sddmm_triton as SD
from gnn.kernels import spmm_triton as SP

ARCHS = (80, 90)
FEAT = ("fp32", "bf16", "fp16")
IDX = ("i32", "i64")
SPMM_DIMS = (1, 3, 17, 64, 100, 512)
FEATURE_INTS = ("d", "stride_x", "stride_add", "stride_y")  # = d for contiguous tensors


DIV16 = [["tt.divisibility", 16]]


def _compile(kernel, sig, constexprs, num_warps, arch, div16=(), maxnreg=None):
    """As the runtime specialises a call: pointers 16-byte aligned (torch's allocations), the
    integer arguments named in ``div16`` divisible by 16 (a feature size that is)."""
    names = kernel.arg_names
    full = {name: sig.get(name, "constexpr") for name in names}
    assert set(constexprs) | set(sig) == set(names)
    attrs = {(names.index(k),): DIV16 for k, v in sig.items() if v.startswith("*") or k in div16}
    src = ASTSource(fn=kernel, signature=full, attrs=attrs,
                    constexprs={(names.index(k),): v for k, v in constexprs.items()})
    options = {"num_warps": num_warps} if maxnreg is None else {"num_warps": num_warps, "maxnreg": maxnreg}
    compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options)
    assert compiled.asm.get("cubin"), "no cubin produced"
    return compiled


def _stack_bytes(cubin: bytes, arch: int) -> int:
    """The kernel's local-memory stack (spills, local arrays) from the wheel's cuobjdump."""
    from triton.backends.nvidia.compiler import get_ptxas

    tool = Path(get_ptxas(arch).path).with_name("cuobjdump")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        usage = subprocess.run([str(tool), "--dump-resource-usage", f.name], capture_output=True,
                               text=True, check=True).stdout
    return int(re.search(r"STACK:(\d+)", usage).group(1))


def _spmm_cases():
    """The row kernel in every (config, EVEN_D) spmm_config gives for d = 1..512 and 4- / 2-byte
    features, the flags rotating so that each value of each appears; the reduction likewise."""
    cases = []
    def pick(d, elem):
        cfg = SP.spmm_config(d, elem)
        return cfg, d % (cfg[1] * cfg[2]) == 0, elem

    picks = {}  # config -> the largest d that picks it: divisible by 16 when EVEN_D (and >= 16)
    for d, elem in itertools.product(range(1, 513), (4, 2)):
        picks[pick(d, elem)] = d
    flags = list(itertools.product((False, True), repeat=3))
    for i, (((rows, nt, chunk, nw), even, elem), d) in enumerate(sorted(picks.items())):
        div = d % 16 == 0
        has_add, has_part, off64 = flags[i % len(flags)]
        feat = ("fp32",) if elem == 4 else ("bf16", "fp16")
        feat, st, col = feat[i % len(feat)], IDX[i % 2], IDX[(i // 2) % 2]
        sig = {"start_ptr": f"*{st}", "len_ptr": "*i32", "out_ptr": "*i32", "col_ptr": f"*{col}",
               "val_ptr": "*fp32", "x_ptr": f"*{feat}", "add_ptr": "*fp32", "y_ptr": f"*{feat}",
               "part_ptr": "*fp32", "n_items": "i32", "d": "i32", "stride_x": "i32",
               "stride_add": "i32", "stride_y": "i32"}
        ce = dict(HAS_ADD=has_add, HAS_PART=has_part, ROWS=rows, NT=nt, CHUNK=chunk, EVEN_D=even,
                  OFF64=off64)
        cases.append(pytest.param(SP._spmm_row_kernel, sig, ce, nw, FEATURE_INTS if div else (),
                                  id=f"row-{feat}-{st}-{col}-r{rows}-{nt}x{chunk}-e{int(even)}"
                                  f"-a{int(has_add)}p{int(has_part)}o{int(off64)}-div{int(div)}"))
    for i, (bd, nw) in enumerate(sorted({SP.reduce_config(d) for d in range(1, 513)})):
        for has_add, compact in itertools.product((False, True), (False, True)):
            out = "fp32" if compact else FEAT[i % 3]
            sig = {"long_row_ptr": "*i64", "seg_ptr_ptr": "*i64", "part_ptr": "*fp32",
                   "add_ptr": "*fp32", "y_ptr": f"*{out}", "d": "i32", "stride_add": "i32",
                   "stride_y": "i32"}
            cases.append(pytest.param(SP._spmm_segment_reduce_kernel, sig,
                                      dict(HAS_ADD=has_add, COMPACT=compact, BLOCK_D=bd), nw,
                                      FEATURE_INTS if bd >= 16 else (),
                                      id=f"reduce-{out}-bd{bd}-add{int(has_add)}-c{int(compact)}"))
    return cases


class _E:  # what ngcf_config reads from e: a CUDA tensor of that dtype and size
    def __init__(self, dtype, numel=1):
        import torch

        self.dtype, self.device, self._numel = dtype, torch.device("cuda"), numel

    def element_size(self):
        return 4 if str(self.dtype).endswith("float32") else 2

    def numel(self):
        return self._numel


def _ngcf_cases():
    """Each of the three fused kernels in every configuration ngcf_config gives for
    d_in, d_out = 1..128 and 4- / 2-byte features (fp32: PREC tf32x3, and tf32 on every other
    one), the boolean flags rotating so that each value of each appears."""
    import torch

    picks = {}
    for (elem, dt), numel in itertools.product(((4, torch.float32), (2, torch.bfloat16)),
                                               (1, SP.OFFSET32_LIMIT)):
        for d_in, d_out in itertools.product(range(1, 129), repeat=2):
            cfg = NL.ngcf_config(_E(dt, numel), d_in, d_out)
            assert cfg["DOT_F32"] is False
            for kernel in ("fwd", "rows", "weights"):  # the largest sizes picking each config
                picks[(kernel, elem, tuple(sorted(cfg[kernel].items())))] = (d_in, d_out)
    kernels = dict(fwd=NL._ngcf_fwd_kernel, rows=NL._ngcf_bwd_rows_kernel,
                   weights=NL._ngcf_bwd_weights_kernel)
    cases = []
    for i, ((kernel, elem, items), (d_in, d_out)) in enumerate(sorted(picks.items())):
        div_in, div_out = d_in % 16 == 0, d_out % 16 == 0
        cfg = dict(items)
        nw = (cfg.pop("num_warps"), cfg.pop("maxnreg"))
        feat = "fp32" if elem == 4 else ("bf16", "fp16")[i % 2]
        precs = ["tf32x3"] + (["tf32"] if elem == 4 and i % 2 else [])
        flags = [bool(i >> k & 1) for k in range(5)]
        for prec in precs:
            ce = dict(cfg, PREC=prec, DOT_F32=False, SELF_LOOP=flags[0])
            if kernel == "fwd":
                ce.update(HAS_BIAS=flags[1], SAVE_S=flags[2], HAS_LONG=flags[3])
                sig = {"start_ptr": f"*{IDX[i % 2]}", "len_ptr": "*i32", "row_ptr": "*i32",
                       "col_ptr": f"*{IDX[(i // 2) % 2]}", "val_ptr": "*fp32", "e_ptr": f"*{feat}",
                       "w1_ptr": f"*{feat}", "w2_ptr": f"*{feat}", "b_ptr": f"*{feat}",
                       "s_long_ptr": "*fp32", "out_ptr": f"*{feat}", "s_ptr": f"*{feat}"}
            else:
                sig = {"grad_ptr": f"*{feat}", "out_ptr": f"*{feat}", "e_ptr": f"*{feat}",
                       "s_ptr": f"*{('fp32', feat)[i % 2]}"}  # S saved (e's dtype) or recomputed (fp32)
                sig.update({"w1_ptr": f"*{feat}", "w2_ptr": f"*{feat}", "ds_ptr": f"*{feat}",
                            "de_ptr": "*fp32"} if kernel == "rows" else
                           {"dw1_ptr": "*fp32", "dw2_ptr": "*fp32", "db_ptr": "*fp32", "n_blocks": "i32"})
            sig.update({"n": "i32", "n_light": "i32", "d_in": "i32", "d_out": "i32",
                        "negative_slope": "fp32"})
            sig = {k: v for k, v in sig.items() if k in kernels[kernel].arg_names}
            tag = "-".join(f"{k}{int(v) if isinstance(v, bool) else v}" for k, v in sorted(ce.items())
                           if k != "DOT_F32")
            div = ("d_in",) * div_in + ("d_out",) * div_out
            cases.append(pytest.param(kernels[kernel], sig, ce, nw, div, id=f"ngcf-{kernel}-{feat}-{tag}"
                                      f"-div{int(div_in)}{int(div_out)}"))
    return cases


def _sddmm_cases():
    cases = []
    for i, d in enumerate(SPMM_DIMS):
        feat, col = FEAT[i % 3], IDX[i % 2]
        block_e, block_d, n_dt, nw = SD.sddmm_config(d)
        sig = {"row_ptr": "*i32", "col_ptr": f"*{col}", "a_ptr": f"*{feat}", "b_ptr": f"*{feat}",
               "out_ptr": "*fp32", "nnz": "i32", "d": "i32", "stride_a": "i32", "stride_b": "i32"}
        cases.append(pytest.param(SD._sddmm_kernel, sig,
                                  dict(N_DT=n_dt, BLOCK_E=block_e, BLOCK_D=block_d), nw,
                                  ("d", "stride_a", "stride_b") if d % 16 == 0 else (),
                                  id=f"sddmm-{feat}-{col}-d{d}"))
    return cases


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("kernel,sig,constexprs,num_warps,div16",
                         _spmm_cases() + _ngcf_cases() + _sddmm_cases())
def test_kernel_compiles(kernel, sig, constexprs, num_warps, div16, arch):
    """Compiles, and keeps everything in registers: no stack (no spills, no local arrays).
    ``num_warps``: an int, or (num_warps, maxnreg) for kernels launched with a register cap."""
    warps, maxnreg = num_warps if isinstance(num_warps, tuple) else (num_warps, None)
    compiled = _compile(kernel, sig, constexprs, warps, arch, div16, maxnreg)
    assert _stack_bytes(compiled.asm["cubin"], arch) == 0


def test_compile_catches_a_broken_kernel():
    """The harness itself fails on a kernel that cannot compile (a test that cannot fail is a defect)."""
    import triton.language as tl

    @triton.jit
    def _broken(x_ptr, BLOCK: tl.constexpr):
        offs = tl.arange(0, BLOCK)
        tl.store(x_ptr + offs, tl.dot(offs, offs))  # 1-D dot: invalid

    with pytest.raises(Exception):
        _compile(_broken, {"x_ptr": "*fp32"}, dict(BLOCK=16), 4, 90)
