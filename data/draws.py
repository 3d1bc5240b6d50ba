"""Uniform random integers on a device, for the samplers of gnn.data.

Every draw goes through :func:`random_bits`, uniform int64 in ``[0, 2**62)``, reduced modulo the
number of choices m: the bias is at most m / 2**62, far below what any test (or training run)
could see, and one call covers any mix of ranges (``bits % high`` with a tensor ``high``).
Drawing the bits is the only step that needs the ``torch.Generator``; what the samplers do with
them is pure tensor code (no host sync, compiles with ``torch.compile(fullgraph=True)``).
"""
from __future__ import annotations

import torch

__all__ = ["BITS_HIGH", "random_bits", "canonical_device", "check_generator"]

#: Exclusive upper bound of :func:`random_bits`.
BITS_HIGH = 2**62


def random_bits(shape, generator: torch.Generator, device) -> torch.Tensor:
    """int64 tensor of ``shape``, uniform on ``[0, 2**62)``, drawn from ``generator`` on ``device``."""
    return torch.randint(0, BITS_HIGH, tuple(shape), generator=generator, device=device)


def canonical_device(device) -> torch.device:
    """``torch.device`` with the CUDA index filled in (``cuda`` -> ``cuda:<current>``)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def check_generator(generator, device: torch.device, name: str = "generator") -> None:
    """TypeError / ValueError naming ``name`` unless it is a ``torch.Generator`` on ``device``."""
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator, but got {type(generator).__name__}")
    if canonical_device(generator.device) != device:
        raise ValueError(f"{name} is on {generator.device}, but the sampler draws on {device}: "
                         f"create it with torch.Generator(device={str(device)!r})")
