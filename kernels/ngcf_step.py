r"""The dense step of an NGCF layer, given ``S = Â E``: the one definition of its math.

With ``E`` the layer's input rows, ``S`` the same rows of ``Â E`` (docs/DESIGN.md §2)::

    U1 = S + [self_loop] E,     U2 = S ⊙ E
    Z  = U1 W1 + U2 W2 + b,     out = LeakyReLU(Z, slope)

and its backward, with ``dZ = grad ⊙ LeakyReLU'(Z)`` (read from ``out``: for a slope >= 0,
``Z > 0`` exactly where ``out > 0``)::

    [dU1 | dU2] = dZ [W1; W2]ᵀ
    dS = dU1 + dU2 ⊙ E,          dE_local = [self_loop] dU1 + dU2 ⊙ S
    [dW1; dW2] = [U1 | U2]ᵀ dZ,  db = Σ_rows dZ

(the layer's whole ``dE`` is ``dE_local + Âᵀ dS``: the caller's SpMM). Every torch expression of
the layer runs these two functions: the CPU layer by row blocks (ngcf_cpu.py), the composition
for float64 and for sizes the fused kernel does not take (ngcf_layer.py), the model's last layer
at a batch's rows (gnn/models/ngcf.py) and gnn.distributed's layer, the last two through
:func:`dense_step` (autograd). The fused Triton kernel is the only other expression of the step,
and tests/kernels tie it to this one.

The products are float32 oneDNN GEMMs on the CPU when torch has them
(``gnn.kernels.defaults.cpu_gemm``), torch.mm / addmm otherwise; the sums are taken in the order
written above (``U1 W1 + b``, then ``+ U2 W2``) on every path.
"""
from __future__ import annotations

from typing import Optional

import torch

from . import defaults

_ONEDNN_LINEAR = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
_onednn_works: Optional[bool] = None  # probed once, on the first float32 CPU product


def _onednn_available() -> bool:
    """Whether this torch build runs oneDNN's float32 linear (probed once with a 2 x 2 call)."""
    global _onednn_works
    if _onednn_works is None:
        _onednn_works = False
        if _ONEDNN_LINEAR is not None and torch.backends.mkldnn.is_available():
            try:
                x = torch.ones(2, 2)
                _onednn_works = bool(torch.equal(_ONEDNN_LINEAR(x, x, None, "none", [None], ""),
                                                 x + x.new_ones(())))
            except (RuntimeError, NotImplementedError):
                pass
    return _onednn_works


def _uses_onednn(x: torch.Tensor) -> bool:
    # (oneDNN cannot describe a product with no rows: torch.mm takes those)
    return (x.device.type == "cpu" and x.dtype == torch.float32 and defaults.cpu_gemm == "onednn"
            and x.numel() > 0 and not torch.compiler.is_compiling() and _onednn_available())


def linear(x: torch.Tensor, weight_t: torch.Tensor, bias: Optional[torch.Tensor] = None,
           add: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``x @ weight_tᵀ (+ bias) (+ add)`` as a new tensor, the sums in that order
    (``weight_t``: (d_out, d_in), a linear layer's weight layout)."""
    if _uses_onednn(x):
        if add is None:
            return _ONEDNN_LINEAR(x, weight_t, bias, "none", [None], "")
        return _ONEDNN_LINEAR.binary(x, add, weight_t, bias, "add")
    y = torch.mm(x, weight_t.t()) if bias is None else torch.addmm(bias, x, weight_t.t())
    return y if add is None else torch.add(add, y)


def _fill_u(u1, u2, s, e, self_loop: bool):
    """``U1 = S + [self_loop] E`` into ``u1`` (or S itself, without the self-loop, when ``u1``
    is None) and ``U2 = S ⊙ E`` into ``u2``."""
    if self_loop:
        u1 = torch.add(s, e, out=u1) if u1 is not None else s + e
    elif u1 is None:
        u1 = s
    else:
        u1.copy_(s)
    u2 = torch.mul(s, e, out=u2) if u2 is not None else s * e
    return u1, u2


def forward(s, e, w1, w2, bias, negative_slope: float, self_loop: bool, *, out=None,
            u=None) -> torch.Tensor:
    """``out = LeakyReLU(U1 W1 + U2 W2 + b)`` (module docstring), in s's dtype.

    ``out``: where to write it (rows x d_out); ``u``: a (2, rows, d_in) workspace for U1 and
    U2, each contiguous (the row-block loop reuses one; GEMMs take contiguous operands).
    """
    return _forward(s, e, w1, w2, bias, negative_slope, self_loop, out, u)[0]


def _forward(s, e, w1, w2, bias, negative_slope, self_loop, out=None, u=None):
    """(out, U1, U2): :func:`forward` and the U it formed."""
    u1 = None if u is None or not self_loop else u[0]  # without the self-loop, U1 is S itself
    u1, u2 = _fill_u(u1, None if u is None else u[1], s, e, self_loop)
    z = linear(u2, w2.t(), add=linear(u1, w1.t(), bias))
    if out is None:
        return torch.nn.functional.leaky_relu(z, negative_slope), u1, u2
    return torch.ops.aten.leaky_relu.out(z, negative_slope, out=out), u1, u2


def backward(grad, out, s, e, w1, w2, negative_slope: float, self_loop: bool, *, ds=None,
             de_local=None, u=None, u_saved=None):
    """``(dS, dE_local, dW1, dW2, db)`` of :func:`forward` (module docstring), in s's dtype.

    ``ds``, ``de_local``: where to write those (rows x d_in); ``u``: a (rows, 2 d_in) workspace
    for ``[U1 | U2]``; ``u_saved``: ``(U1, U2)`` kept from the forward (then not rebuilt).
    """
    rows, d = s.shape
    dz = torch.ops.aten.leaky_relu_backward(grad, out, negative_slope, True)
    du = linear(dz, torch.cat([w1, w2]))  # [dU1 | dU2] in one product
    du1, du2 = du[:, :d], du[:, d:]
    ds = torch.addcmul(du1, du2, e, out=ds) if ds is not None else torch.addcmul(du1, du2, e)
    if self_loop:
        de_local = (torch.addcmul(du1, du2, s, out=de_local) if de_local is not None
                    else torch.addcmul(du1, du2, s))
    else:
        de_local = torch.mul(du2, s, out=de_local) if de_local is not None else du2 * s
    if u_saved is not None:
        u = torch.cat(u_saved, dim=1)
    elif u is None:  # built whole: out= into column slices does not trace under torch.compile
        u = torch.cat(_fill_u(None, None, s, e, self_loop), dim=1)
    else:
        _fill_u(u[:, :d], u[:, d:], s, e, self_loop)
    # [dW1; dW2]ᵀ = dZᵀ [U1 | U2], one product; torch.mm (MKL) takes the transposed dZ faster
    # than oneDNN's linear does on this shape
    dw_t = torch.mm(dz.t(), u)
    dw1 = dw_t[:, :d].t().contiguous()
    dw2 = dw_t[:, d:].t().contiguous()
    return ds, de_local, dw1, dw2, dz.sum(0)


class _DenseStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, s, e, w1, w2, bias, negative_slope, self_loop):
        out, u1, u2 = _forward(s, e, w1, w2, bias, negative_slope, self_loop)
        ctx.save_for_backward(out, s, e, w1, w2, u1, u2)  # U kept: not formed again
        ctx.slope, ctx.self_loop, ctx.has_bias = negative_slope, self_loop, bias is not None
        return out

    @staticmethod
    def backward(ctx, grad):
        out, s, e, w1, w2, u1, u2 = ctx.saved_tensors
        ds, de, dw1, dw2, db = backward(grad.contiguous(), out, s, e, w1, w2, ctx.slope,
                                        ctx.self_loop, u_saved=(u1, u2))
        return ds, de, dw1, dw2, db if ctx.has_bias else None, None, None


def dense_step(s: torch.Tensor, e: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor,
               bias: Optional[torch.Tensor], negative_slope: float, self_loop: bool) -> torch.Tensor:
    """:func:`forward`, differentiable in ``s``, ``e``, ``w1``, ``w2`` and ``bias`` through
    :func:`backward`: for callers that compute ``S`` themselves and let autograd carry ``dS``
    back through their SpMM (a batch's last layer, gnn.distributed). All inputs share one dtype."""
    return _DenseStep.apply(s, e, w1, w2, bias, float(negative_slope), bool(self_loop))
