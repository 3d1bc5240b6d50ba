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
NGCF_DIMS = ((5, 3), (17, 33), (64, 64), (100, 128))


def _compile(kernel, sig, constexprs, num_warps, arch):
    names = kernel.arg_names
    full = {name: sig.get(name, "constexpr") for name in names}
    assert set(constexprs) <= set(names)
    src = ASTSource(fn=kernel, signature=full,
                    constexprs={(names.index(k),): v for k, v in constexprs.items()})
    compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32),
                              options={"num_warps": num_warps})
    assert compiled.asm.get("cubin"), "no cubin produced"
    return compiled


def _spmm_cases():
    """The row kernel in every (config, EVEN_D) spmm_config gives for d = 1..512 and 4- / 2-byte
    features, the flags rotating so that each value of each appears; the reduction likewise."""
    cases = []
    def pick(d, elem):
        cfg = SP.spmm_config(d, elem)
        return cfg, d % (cfg[1] * cfg[2]) == 0, elem

    picks = sorted({pick(d, elem) for d in range(1, 513) for elem in (4, 2)})
    flags = list(itertools.product((False, True), repeat=3))
    for i, ((rows, nt, chunk, nw), even, elem) in enumerate(picks):
        has_add, has_part, off64 = flags[i % len(flags)]
        feat = ("fp32",) if elem == 4 else ("bf16", "fp16")
        feat, st, col = feat[i % len(feat)], IDX[i % 2], IDX[(i // 2) % 2]
        sig = {"start_ptr": f"*{st}", "len_ptr": "*i32", "out_ptr": "*i32", "col_ptr": f"*{col}",
               "val_ptr": "*fp32", "x_ptr": f"*{feat}", "add_ptr": "*fp32", "y_ptr": f"*{feat}",
               "part_ptr": "*fp32", "n_items": "i32", "d": "i32", "stride_x": "i32",
               "stride_add": "i32", "stride_y": "i32"}
        ce = dict(HAS_ADD=has_add, HAS_PART=has_part, ROWS=rows, NT=nt, CHUNK=chunk, EVEN_D=even,
                  OFF64=off64)
        cases.append(pytest.param(SP._spmm_row_kernel, sig, ce, nw, id=f"row-{feat}-{st}-{col}-r{rows}"
                                  f"-{nt}x{chunk}-e{int(even)}-a{int(has_add)}p{int(has_part)}o{int(off64)}"))
    for i, (bd, nw) in enumerate(sorted({SP.reduce_config(d) for d in range(1, 513)})):
        for has_add, compact in itertools.product((False, True), (False, True)):
            out = "fp32" if compact else FEAT[i % 3]
            sig = {"long_row_ptr": "*i64", "seg_ptr_ptr": "*i64", "part_ptr": "*fp32",
                   "add_ptr": "*fp32", "y_ptr": f"*{out}", "d": "i32", "stride_add": "i32",
                   "stride_y": "i32"}
            cases.append(pytest.param(SP._spmm_segment_reduce_kernel, sig,
                                      dict(HAS_ADD=has_add, COMPACT=compact, BLOCK_D=bd), nw,
                                      id=f"reduce-{out}-bd{bd}-add{int(has_add)}-c{int(compact)}"))
    return cases


class _E:  # what ngcf_config reads from e: a CUDA tensor of that dtype
    def __init__(self, dtype):
        import torch

        self.dtype, self.device = dtype, torch.device("cuda")


def _ngcf_cases():
    import torch

    tdt = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    cases = []
    flag_rows = [(True, True, True, True), (False, False, False, False),
                 (True, False, True, False), (False, True, False, True)]
    for i, ((d_in, d_out), flags) in enumerate(itertools.product(NGCF_DIMS, flag_rows)):
        if i % 2:  # half the product is plenty: every dim sees every flag value
            continue
        feat, rp, col = FEAT[i % 3], IDX[(i // 2) % 2], IDX[(i // 4) % 2]
        cfg = NL.ngcf_config(_E(tdt[feat]), d_in, d_out)
        has_bias, self_loop, save_or_recompute, has_long = flags
        assert cfg["DOT_F32"] is False
        common = dict(HAS_LONG=has_long, LOWP=cfg["LOWP"], PREC=cfg["PREC"], DOT_F32=False,
                      BLOCK_M=cfg["BLOCK_M"], BLOCK_K=cfg["BLOCK_K"],
                      BLOCK_DIN=cfg["BLOCK_DIN"], SELF_LOOP=self_loop)
        csr = {"rowptr_ptr": f"*{rp}", "col_ptr": f"*{col}", "val_ptr": "*fp32",
               "s_long_ptr": "*fp32", "long_pos_ptr": "*i32"}
        sig = dict(csr, e_ptr=f"*{feat}", w1_ptr=f"*{feat}", w2_ptr=f"*{feat}", b_ptr=f"*{feat}",
                   out_ptr=f"*{feat}", s_ptr=f"*{feat}", n="i32", d_in="i32", d_out="i32",
                   long_threshold="i32", negative_slope="fp32")
        cases.append(pytest.param(NL._ngcf_fwd_kernel, sig,
                                  dict(common, HAS_BIAS=has_bias, SAVE_S=save_or_recompute,
                                       BLOCK_N=cfg["BLOCK_N"]),
                                  cfg["num_warps"], id=f"ngcf-fwd-{feat}-{d_in}x{d_out}-{i}"))
        sig = dict(csr, grad_ptr=f"*{feat}", out_ptr=f"*{feat}", s_ptr=f"*{feat}",
                   e_ptr=f"*{feat}", w1_ptr=f"*{feat}", w2_ptr=f"*{feat}", ds_ptr="*fp32",
                   de_ptr="*fp32", dw1_ptr="*fp32", dw2_ptr="*fp32", db_ptr="*fp32", n="i32",
                   d_in="i32", d_out="i32", long_threshold="i32", negative_slope="fp32",
                   n_blocks="i32")
        cases.append(pytest.param(NL._ngcf_bwd_kernel, sig,
                                  dict(common, RECOMPUTE=save_or_recompute,
                                       BLOCK_DOUT=cfg["BLOCK_DOUT"]),
                                  cfg["num_warps"], id=f"ngcf-bwd-{feat}-{d_in}x{d_out}-{i}"))
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
                                  id=f"sddmm-{feat}-{col}-d{d}"))
    return cases


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("kernel,sig,constexprs,num_warps",
                         _spmm_cases() + _ngcf_cases() + _sddmm_cases())
def test_kernel_compiles(kernel, sig, constexprs, num_warps, arch):
    _compile(kernel, sig, constexprs, num_warps, arch)


def test_compile_catches_a_broken_kernel():
    """The harness itself fails on a kernel that cannot compile (a test that cannot fail is a defect)."""
    import triton.language as tl

    @triton.jit
    def _broken(x_ptr, BLOCK: tl.constexpr):
        offs = tl.arange(0, BLOCK)
        tl.store(x_ptr + offs, tl.dot(offs, offs))  # 1-D dot: invalid

    with pytest.raises(Exception):
        _compile(_broken, {"x_ptr": "*fp32"}, dict(BLOCK=16), 4, 90)
