r"""STBP surrogate derivatives of the spike function ``o = H(u - V_th)``.

With ``x = u - V_th`` and width ``a`` (Wu et al., Front. Neurosci. 2018, eqs. 9-12):

- ``rect``:       h(x) = (1/a) · 1[|x| < a/2]
- ``polynomial``: h(x) = max(0, √a/2 − (a/4)·|x|)          (zero for |x| > 2/√a)
- ``sigmoid``:    h(x) = (1/a) · e^{−x/a} / (1 + e^{−x/a})²
- ``gaussian``:   h(x) = 1/√(2πa) · e^{−x²/(2a)}

Every curve integrates to 1. For the polynomial curve the paper's ``sign(2/√a − |x|)``
factor would turn the curve negative-then-growing outside its support; we read it as the
triangle clipped at zero.
"""
from __future__ import annotations

import math

import torch

SURROGATES = ("rect", "polynomial", "sigmoid", "gaussian")
DEFAULT_WIDTH = {"rect": 1.0, "polynomial": 1.0, "sigmoid": 0.25, "gaussian": 0.25}


def surrogate_grad(x: torch.Tensor, kind: str = "rect", width: float | None = None) -> torch.Tensor:
    """h(x) for ``x = u - V_th``: the derivative used in place of dH/du."""
    a = DEFAULT_WIDTH[kind] if width is None else float(width)
    if kind == "rect":
        return (x.abs() < a / 2).to(x.dtype) / a
    if kind == "polynomial":
        return torch.clamp(math.sqrt(a) / 2 - (a / 4) * x.abs(), min=0.0)
    if kind == "sigmoid":
        s = torch.sigmoid(x / a)
        return s * (1 - s) / a
    if kind == "gaussian":
        return torch.exp(-(x * x) / (2 * a)) / math.sqrt(2 * math.pi * a)
    raise ValueError(f"unknown surrogate {kind!r}; choose one of {', '.join(SURROGATES)}")


class SpikeFn(torch.autograd.Function):
    """Heaviside forward ``(x >= 0)``, surrogate backward ``h(x)``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, kind: str, width: float | None) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.kind, ctx.width = kind, width
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad * surrogate_grad(x, ctx.kind, ctx.width), None, None


def spike(x: torch.Tensor, kind: str = "rect", width: float | None = None) -> torch.Tensor:
    """Spike function on ``x = u - V_th`` with a surrogate gradient."""
    return SpikeFn.apply(x, kind, width)
