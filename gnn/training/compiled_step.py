"""One BPR step — propagation, loss, backward and Adam — as a single ``torch.compile`` graph.

``torch.optim.Adam.step`` inserts graph breaks and ``Tensor.backward`` is not traced by default,
so the compiled step takes the gradients with ``torch.autograd.grad`` (traced when
``torch._dynamo.config.trace_autograd_ops`` is on, torch >= 2.11) and applies Adam's update
itself, on the optimiser's own state tensors (``exp_avg``, ``exp_avg_sq``, ``step``): a
checkpoint written by a compiled run resumes an eager one and back. The step reads no value on
the host (no ``.item()``, ``nonzero`` or boolean-mask indexing), so on CUDA it can be captured
as a CUDA graph (``mode="reduce-overhead"``).

Adam (Kingma & Ba; torch's defaults, no weight decay), per parameter ``θ`` with gradient ``g``::

    t ← t + 1;  m ← β1 m + (1 - β1) g;  v ← β2 v + (1 - β2) g²
    θ ← θ - lr / (1 - β1^t) · m / (sqrt(v / (1 - β2^t)) + ε)
"""
from __future__ import annotations

from typing import Callable

import torch


def _adam_state(optimizer: torch.optim.Adam) -> list:
    """``(param, exp_avg, exp_avg_sq, step)`` per parameter, created as Adam would create them."""
    out = []
    for group in optimizer.param_groups:
        if group.get("weight_decay", 0) or group.get("amsgrad") or group.get("maximize"):
            raise ValueError("the compiled step supports plain Adam (no weight decay, amsgrad "
                             "or maximize)")
        for p in group["params"]:
            state = optimizer.state[p]
            if not state:
                state["step"] = torch.tensor(0.0, dtype=torch.float32, device=p.device)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            elif state["step"].device != p.device:  # eager Adam keeps it on the CPU
                state["step"] = state["step"].to(p.device)
            out.append((p, state["exp_avg"], state["exp_avg_sq"], state["step"], group))
    return out


def make_compiled_step(model, optimizer: torch.optim.Adam, reg: float, reg_on: str,
                       mode: str | None = None, objective=None) -> Callable:
    """``step(u, i, j) -> detached loss``: one optimiser step, compiled with ``fullgraph=True``.

    ``mode`` is torch.compile's (``"reduce-overhead"`` captures CUDA graphs on CUDA);
    ``objective`` the loss's (:meth:`gnn.GraphRecommender.loss`; None: BPR).
    """
    if not isinstance(optimizer, torch.optim.Adam):
        raise TypeError(f"the compiled step implements Adam, but got {type(optimizer).__name__}")
    entries = _adam_state(optimizer)
    params = [e[0] for e in entries]

    def step(u, i, j):
        loss = model.loss(u, i, j, reg, reg_on=reg_on, check=False, objective=objective)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for (p, m, v, t, group), g in zip(entries, grads):
                beta1, beta2 = group["betas"]
                t.add_(1)
                m.lerp_(g, 1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                step_size = group["lr"] / (1 - beta1 ** t)
                denom = (v / (1 - beta2 ** t)).sqrt_().add_(group["eps"])
                p.sub_(step_size * m / denom)
        return loss.detach()

    compiled = torch.compile(step, fullgraph=True, mode=mode)

    def run(u, i, j):
        with torch._dynamo.config.patch(trace_autograd_ops=True):
            return compiled(u, i, j)

    return run
