r"""Explicitly iterative leaky integrate-and-fire neuron (Wu et al., AAAI 2019).

    u[t] = k · u[t-1] · (1 − o[t-1]) + I[t]
    o[t] = H(u[t] − V_th)

with ``u[0] = o[0] = 0``. ``I[t]`` is the layer's synaptic input (``W·x[t] + b``), computed
by the stateless layers once on the whole ``[T·B]`` batch; only this recursion loops over T.

Training uses a fused autograd function: one forward loop that keeps ``u``, one backward
loop through time (full STBP gradient, reset path included):

    δu[t] = (g_o[t] − k·u[t]·δu[t+1]) · h(u[t] − V_th) + k·(1 − o[t]) · δu[t+1]
    ∂L/∂I[t] = δu[t]

In eval (and export) the forward is plain tensor ops with ``o = (u >= V_th)`` as float.
"""
from __future__ import annotations

import torch
from torch import nn

from .surrogate import SURROGATES, surrogate_grad


class _LIFSeq(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inp: torch.Tensor, k: float, v_th: float, kind: str, width: float | None):
        u_all = torch.empty_like(inp)
        o_all = torch.empty_like(inp)
        u = torch.zeros_like(inp[0])
        o = torch.zeros_like(inp[0])
        for t in range(inp.shape[0]):
            u = k * u * (1 - o) + inp[t]
            o = (u >= v_th).to(inp.dtype)
            u_all[t] = u
            o_all[t] = o
        ctx.save_for_backward(u_all, o_all)
        ctx.k, ctx.v_th, ctx.kind, ctx.width = k, v_th, kind, width
        return o_all

    @staticmethod
    def backward(ctx, g_o: torch.Tensor):
        u_all, o_all = ctx.saved_tensors
        k = ctx.k
        h_all = surrogate_grad(u_all - ctx.v_th, ctx.kind, ctx.width)
        g_in = torch.empty_like(g_o)
        du_next = torch.zeros_like(g_o[0])
        for t in range(g_o.shape[0] - 1, -1, -1):
            du = (g_o[t] - k * u_all[t] * du_next) * h_all[t] + k * (1 - o_all[t]) * du_next
            g_in[t] = du
            du_next = du
        return g_in, None, None, None, None


class LIF(nn.Module):
    """Multi-step LIF layer on time-first input ``[T, B, ...]`` → spikes ``[T, B, ...]``.

    Args:
        k: membrane decay (``k = e^{−dt/τ}``); the paper's code uses 0.2.
        v_th: firing threshold V_th.
        surrogate: ``rect`` (default), ``polynomial``, ``sigmoid`` or ``gaussian``.
        width: the surrogate's width parameter ``a`` (None: the curve's default).
    """

    def __init__(self, k: float = 0.2, v_th: float = 0.5, surrogate: str = "rect",
                 width: float | None = None) -> None:
        super().__init__()
        if surrogate not in SURROGATES:
            raise ValueError(f"unknown surrogate {surrogate!r}; choose one of {', '.join(SURROGATES)}")
        self.k, self.v_th, self.surrogate, self.width = float(k), float(v_th), surrogate, width
        self.record_rate = False
        self.rate: torch.Tensor | None = None

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        if self.training and torch.is_grad_enabled():
            out = _LIFSeq.apply(inp, self.k, self.v_th, self.surrogate, self.width)
        else:
            u = torch.zeros_like(inp[0])
            o = torch.zeros_like(inp[0])
            spikes = []
            for t in range(inp.shape[0]):
                u, o = self.step(inp[t], u, o)
                spikes.append(o)
            out = torch.stack(spikes)
        if self.record_rate:
            self.rate = out.detach().float().mean()
        return out

    def step(self, i_t: torch.Tensor, u: torch.Tensor, o: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step (eval semantics): returns the new ``(u, o)``."""
        u = self.k * u * (1 - o) + i_t
        return u, (u >= self.v_th).to(i_t.dtype)

    def extra_repr(self) -> str:
        return f"k={self.k}, v_th={self.v_th}, surrogate={self.surrogate}, width={self.width}"
