"""tools.kernel_static / kernel_model / kernel_tables: the SASS loop reader on hand-written SASS, the
occupancy calculator and the L2 model against hand-computed cases, the roofline arithmetic on
a toy degree distribution, and one real compile (sm_90, the smallest SpMM case)."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tools import kernel_model as M
from tools import kernel_static as KS
from tools import kernel_tables as T
from bench.measure import write_section

# an outer loop 0x30-0x80 around an inner one 0x50-0x60; 0xd0-0xe0 is reached only through
# BRA.DIV (and branches back, which must not make a loop); NOP and the self-branch are padding
SASS = """
        /*0000*/                   S2R R0, SR_TID.X ;                 /* 0x0000000000007919 */
                                                                      /* 0x000e220000002100 */
        /*0010*/                   IMAD R2, R0, 0x4, RZ ;             /* 0x0000000400027824 */
        /*0020*/              @P0 BRA 0x90 ;
        /*0030*/                   LDG.E.128 R4, desc[UR4][R2.64] ;
        /*0040*/                   IADD3 R2, R2, 0x10, RZ ;
        /*0050*/                   FFMA R8, R4, R5, R8 ;
        /*0060*/              @P1 BRA 0x50 ;
        /*0070*/                   BRA.DIV UR4, 0xd0 ;
        /*0080*/              @!P2 BRA 0x30 ;
        /*0090*/                   STG.E desc[UR4][R2.64], R8 ;
        /*00a0*/                   EXIT ;
        /*00b0*/                   BRA 0xb0;
        /*00c0*/                   NOP;
        /*00d0*/                   SHFL.BFLY PT, R7, R8, 0x1, 0x1f ;
        /*00e0*/                   BRA 0x80 ;
"""


def test_sass_loops_on_hand_written_sass():
    r = M.sass_loops(SASS)
    outer, inner = r["loops"]
    assert (outer["start"], outer["end"], inner["start"], inner["end"]) == ("0x30", "0x80", "0x50", "0x60")
    assert outer["instructions"] == 4 and outer["classes"] == {"LDG.128": 1, "int": 1, "branch": 2}
    assert inner["instructions"] == 2 and inner["classes"] == {"FFMA": 1, "branch": 1}
    assert r["outside"]["instructions"] == 5
    assert r["outside"]["classes"] == {"mask/move": 1, "int": 1, "branch": 2, "STG": 1}


def test_op_classes_and_mma_flops():
    assert [M.op_class(op) for op in ("LDG.E", "LDG.E.64", "LDG.E.U16", "LDGSTS.E.BYPASS.128",
                                      "UIADD3", "VIADD", "HMMA.1688.F32.TF32", "STL.64", "STSM.16.M88",
                                      "ISETP.GE.AND")] \
        == ["LDG.32", "LDG.64", "LDG.16", "async", "int", "int", "MMA", "local", "STS", "mask/move"]
    assert M.mma_flops("HMMA.1688.F32.TF32") == ("tf32", 2 * 16 * 8 * 8)
    assert M.mma_flops("HMMA.16816.F32.BF16") == ("bf16", 2 * 16 * 8 * 16)
    assert M.mma_flops("HGMMA.64x64x16.F32.BF16") == ("bf16", 2 * 64 * 64 * 16 // 4)


@pytest.mark.parametrize("regs,smem,warps,arch,blocks,limit", [
    (48, 1024, 4, 90, 10, "registers"),      # 1536 regs/warp: 42 warps -> 10 blocks of 4
    (255, 100 << 10, 4, 90, 2, "registers"),  # 8192/warp: 8 warps; smem 228K / 101K = 2 too
    (40, 0, 4, 90, 12, "registers"),          # 1280/warp: 51 warps -> 12 blocks
    (25, 0, 1, 90, 32, "blocks"),             # 1024/warp, 1 warp: 32 blocks at most
    (32, 0, 8, 90, 8, "warps"),               # 64 warps / 8
    (64, 60 << 10, 4, 90, 3, "shared"),       # 228K / 61K = 3 (registers would allow 8)
    (64, 60 << 10, 4, 80, 2, "shared"),       # A100: 164K / 61K = 2
    (16, 228 << 10, 4, 90, 0, "shared"),      # more than 227 KB a block: cannot launch
])
def test_occupancy_hand_computed(regs, smem, warps, arch, blocks, limit):
    occ = M.occupancy(regs, smem, warps, arch)
    assert (occ["blocks_per_sm"], occ["limited_by"]) == (blocks, limit)
    assert occ["fraction"] == blocks * warps / 64


def test_lru_misses_against_the_closed_form():
    # everything fits: one cold miss per distinct row (rows never referenced do not count)
    assert M.lru_misses(np.array([3, 0, 1, 7]), 256) == 3
    # 1000 equally popular rows, 5 uses each, 250 held: a reuse hits with probability 1/4
    misses = M.lru_misses(np.full(1000, 5), 32, capacity=250 * 32)
    assert misses == pytest.approx(1000 + 1000 * 4 * 0.75, rel=1e-6)


def _toy_graph(deg):
    deg = np.asarray(deg, dtype=np.int64)
    return SimpleNamespace(name=f"toy{len(deg)}", n=deg.size, nnz=int(deg.sum()), deg=deg,
                           rowptr_dtype=torch.int64, col_dtype=torch.int32)


def test_evaluate_roofline_arithmetic():
    g = _toy_graph([1, 2, 40, 0, 13])  # nnz 56, 4 distinct columns: all fit in L2
    sass = dict(loops=[dict(instructions=100, flops={})],
                outside=dict(instructions=50, flops={"tf32": 2048}))
    work = dict(programs=5, loops=[7], gathers=56, row_bytes=256, stream_bytes=1808,
                reread_bytes=192, lanes=(56 * 64, 7 * 32 * 64))
    r = M.evaluate(sass, work, 4, g)
    warp = 4 * (5 * 50 + 7 * 100)
    assert r["warp_instructions_per_nnz"] == pytest.approx(warp / 56)
    assert r["tensor_flops"] == 4 * 5 * 2048
    assert r["l2_bytes"] == 1808 + 192 + 56 * 256 and r["hbm_bytes"] == 1808 + 4 * 256
    assert r["issue_us"] == pytest.approx(warp / (132 * 4 * 1.98e9) * 1e6)
    assert r["l2_us"] == pytest.approx(r["l2_bytes"] / 5.5e12 * 1e6)
    assert (r["bound"], r["estimate_us"]) == ("issue", r["issue_us"])
    assert r["useful_lane_fraction"] == pytest.approx(56 / (7 * 32))
    assert "model" in M.evaluate(sass, dict(work, loops=[7, 1]), 4, g)  # loop count mismatch


def _loop(ffma):
    return dict(instructions=10 + ffma, classes={"FFMA": ffma, "int": 10}, flops={})


def test_gather_loops_map_blocks_to_the_sass_loops():
    """Blocks of 2 items (lengths 9 8 | 5 2 | 1): unmasked steps to each block's shortest, masked
    ones to its longest; a 4x unrolled unmasked loop with its 1-step remainder; MMA loops take
    the other iterations; any other structure is refused (evaluate() reports it)."""
    lens = np.array([9, 8, 5, 2, 1])
    two = dict(loops=[_loop(16), _loop(16)])
    assert M.gather_loops(two, lens, 2) == ([8 + 2 + 1, 1 + 3 + 0], 9 + 5 + 1)
    mma = dict(instructions=50, classes={"MMA": 4, "FFMA": 2}, flops={})
    three = dict(loops=[mma, _loop(16), _loop(64), _loop(16)])
    assert M.gather_loops(three, lens, 2, repeat=3, others=[7])[0] == [7, 3 * (0 + 2 + 1), 3 * (2 + 0 + 0), 3 * 4]
    assert M.gather_loops(dict(loops=[_loop(16)]), lens, 2) == []


def test_spmm_row_work_on_a_toy_degree_distribution():
    """Items (rows <= T whole, longer rows in T-segments), sorted longest first, in blocks of
    ROWS lanes: unmasked steps up to each block's shortest item, masked ones to its longest."""
    from gnn.kernels import defaults, spmm_triton

    t = defaults.long_threshold
    g = _toy_graph([1, 2, 40, 0, 13, 2 * t + 5])  # the last row: segments t, t, 5
    launch = KS.KERNELS["spmm_row"].launch(64, torch.float32, g)
    rows, nt, chunk, nw = spmm_triton.spmm_config(64, 4)
    assert launch.constexprs == dict(HAS_ADD=False, HAS_PART=True, ROWS=rows, NT=nt, CHUNK=chunk,
                                     EVEN_D=True, OFF64=False)
    assert KS._items(g).tolist() == [t, t, 40, 13, 5, 2, 1, 0]
    assert KS._items(g, fused=True).tolist() == [40, 13, 2, 1, 0, 0]
    sass = dict(loops=[_loop(16), _loop(16)])
    w = KS.KERNELS["spmm_row"].work(g, launch, 64, sass)
    assert rows >= 8 and nt * chunk == 64  # one program, one feature tile
    assert (w["programs"], w["loops"], w["gathers"]) == (1, [0, t], g.nnz)
    assert w["lanes"] == (g.nnz * 64, t * rows * 64)
    lengths, nseg = KS._segments(g)
    assert lengths.tolist() == [t, t, 5] and nseg.tolist() == [3]


def test_fused_launches_follow_ngcf_config():
    from gnn.kernels import ngcf_triton

    g = _toy_graph([3, 0, 5, 2])
    assert KS.KERNELS["ngcf_fwd"].launch(256, torch.float32, g).startswith("not used")
    for name, part in (("ngcf_fwd", "fwd"), ("ngcf_bwd_rows", "rows"), ("ngcf_bwd_weights", "weights")):
        L = KS.KERNELS[name].launch(64, torch.bfloat16, g)
        fn = KS.KERNELS[name].fn()
        assert set(L.args) | set(L.constexprs) == set(fn.arg_names)
        cfg = ngcf_triton.ngcf_config(torch.empty(4, 64, dtype=torch.bfloat16), 64, 64)[part]
        assert (L.num_warps, L.maxnreg) == (cfg["num_warps"], cfg["maxnreg"])
        assert L.args["e_ptr"] == torch.bfloat16


def test_targets_read_the_report():
    """targets() on a hand-made report: the SpMM judged by issue and serial time against the L2
    time, the fused forward against the unfused ops, bf16 against fp32, spills anywhere."""
    def op(name, dtype, est, serial=None, **sums):
        return dict(op=name, dtype=dtype, d=64, estimate_us_gowalla=est,
                    serial_us_gowalla=serial or est, **{f"{k}_gowalla": v for k, v in sums.items()})

    case = lambda k, **kw: dict(kernel=k, dtype="float32", d=64, arch=90, status="ok",  # noqa: E731
                                spill_bytes=dict(store=0, load=0), **kw)
    report = dict(cases=[case("spmm_row", useful_lane_fraction=0.9),
                         case("ngcf_fwd", occupancy=dict(fraction=0.25),
                              gowalla=dict(mma_per_useful_flop=1.5))],
                  ops=[op("csr_spmm", "float32", 80, 95, l2_us=80, issue_us=10, warp_instructions_per_nnz=6),
                       op("ngcf_fwd_fused", "float32", 90), op("ngcf_fwd_unfused", "float32", 140),
                       op("ngcf_bwd_fused", "float32", 100)] +
                      [op(k, "bfloat16", v) for k, v in (("csr_spmm", 40), ("ngcf_fwd_fused", 50),
                                                          ("ngcf_bwd_fused", 50))])
    met = [ok for _, _, ok in T.targets(report)]
    assert met == [True] * 8
    report["cases"][0]["spill_bytes"]["store"] = 4
    report["ops"][0]["serial_us_gowalla"] = 110  # 1.375 x the L2 time
    met = [ok for _, _, ok in T.targets(report)]
    assert met == [True, True, False, True, True, True, False, True]
    assert "**no**" in "\n".join(T.docs_markdown(report))


def test_docs_tables_name_their_reports(tmp_path):
    doc = tmp_path / "KERNELS.md"
    doc.write_text(f"# Kernels\n\ntext\n{T.DOCS_BEGIN}\nold\n{T.DOCS_END}\nend\n")
    for table in ("| one |\n|---|\n| 1 |\n", "| two |\n|---|\n| 2 |\n"):
        write_section(doc, T.DOCS_BEGIN, T.DOCS_END, table, ["after.json", "before.json"])
    text = doc.read_text()
    assert text.startswith("# Kernels\n\ntext\n") and text.endswith(f"{T.DOCS_END}\nend\n")
    assert "| two |" in text and "one" not in text and text.count(T.DOCS_BEGIN) == 1
    assert "| 2 |\n\n<!-- numbers: after.json before.json -->\n" in text


@pytest.mark.slow
def test_real_compile_of_the_smallest_spmm_case(tmp_path):
    pytest.importorskip("triton.backends.nvidia.compiler")
    g = _toy_graph([1, 2, 40, 0, 13, 3000])
    KS._CTX.update(graph=g, cache=tmp_path)
    assert KS._compile_job(("ngcf_fwd", "float32", 4096, 90))["status"].startswith("not used")
    case = KS._compile_job(("spmm_row", "float32", 16, 90))
    assert case["status"] == "ok", case["status"]
    assert 0 < case["registers"] <= 255 and set(case["spill_bytes"]) == {"store", "load"}
    assert 0 < case["occupancy"]["fraction"] <= 1
    for loop in case["sass"]["loops"]:  # the unmasked and the masked steps: gathers and FMAs
        assert loop["classes"].get("FFMA", 0) > 0 and any(k.startswith("LDG") for k in loop["classes"])
    assert len(case["sass"]["loops"]) == 2
    assert ".entry _spmm_row_kernel" in case["ptx_text"]
    L = KS.KERNELS["spmm_row"].launch(16, torch.float32, g)
    r = M.evaluate(case["sass"], KS.KERNELS["spmm_row"].work(g, L, 16, case["sass"]), L.num_warps, g)
    assert r["warp_instructions_per_nnz"] > 0 and r["estimate_us"] > 0
