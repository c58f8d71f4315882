r"""Explicitly iterative leaky integrate-and-fire neuron (Wu et al., AAAI 2019), with the reset
and initial-state choices of SpikingJelly/snnTorch.

    reset = "zero" (the paper):      u[t] = k · u[t-1] · (1 − o[t-1]) + I[t]
    reset = "subtract" (soft reset): u[t] = k · (u[t-1] − V_th · o[t-1]) + I[t]
    o[t] = H(u[t] − V_th)

with ``u[-1] = u0`` (default 0) and ``o[-1] = 0``, so ``u[0] = k·u0 + I[0]``. ``k = 1`` is the
non-leaky integrate-and-fire (IF) neuron; IF with subtraction and ``u0 = V_th/2`` is the neuron
that QCFS-trained ANNs convert to (Bu et al., ICLR 2022). ``I[t]`` is the layer's synaptic input
(``W·x[t] + b``), computed by the stateless layers once on the whole ``[T·B]`` batch; only this
recursion loops over T. The state is kept in fp32 (under bf16 autocast too): a bf16 membrane
would move spikes across the threshold.

Training uses a fused autograd function: one forward loop that keeps ``u``, one backward
loop through time (full STBP gradient, reset path included; ``h`` is the surrogate of H'):

    zero:      δu[t] = (g_o[t] − k·u[t]·δu[t+1]) · h(u[t] − V_th) + k·(1 − o[t]) · δu[t+1]
    subtract:  δu[t] = (g_o[t] − k·V_th·δu[t+1]) · h(u[t] − V_th) + k · δu[t+1]
    ∂L/∂I[t] = δu[t]

In eval (and export) the forward is plain tensor ops with ``o = (u >= V_th)`` as float.
"""
from __future__ import annotations

import torch
from torch import nn

from .surrogate import SURROGATES, surrogate_grad

RESETS = ("zero", "subtract")


def _update(u: torch.Tensor, o: torch.Tensor, i_t: torch.Tensor, k: float, v_th: float, reset: str) -> torch.Tensor:
    if reset == "zero":
        return k * u * (1 - o) + i_t
    return k * (u - v_th * o) + i_t


class _LIFSeq(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inp: torch.Tensor, k: float, v_th: float, kind: str, width: float | None,
                reset: str, u0: float):
        u_all = torch.empty_like(inp)
        o_all = torch.empty_like(inp)
        u = torch.full_like(inp[0], u0)
        o = torch.zeros_like(inp[0])
        for t in range(inp.shape[0]):
            u = _update(u, o, inp[t], k, v_th, reset)
            o = (u >= v_th).to(inp.dtype)
            u_all[t] = u
            o_all[t] = o
        ctx.save_for_backward(u_all, o_all)
        ctx.k, ctx.v_th, ctx.kind, ctx.width, ctx.reset = k, v_th, kind, width, reset
        return o_all

    @staticmethod
    def backward(ctx, g_o: torch.Tensor):
        u_all, o_all = ctx.saved_tensors
        k, v_th = ctx.k, ctx.v_th
        h_all = surrogate_grad(u_all - v_th, ctx.kind, ctx.width)
        g_in = torch.empty_like(g_o)
        du_next = torch.zeros_like(g_o[0])
        for t in range(g_o.shape[0] - 1, -1, -1):
            if ctx.reset == "zero":
                du = (g_o[t] - k * u_all[t] * du_next) * h_all[t] + k * (1 - o_all[t]) * du_next
            else:
                du = (g_o[t] - (k * v_th) * du_next) * h_all[t] + k * du_next
            g_in[t] = du
            du_next = du
        return g_in, None, None, None, None, None, None


class LIF(nn.Module):
    """Multi-step LIF layer on time-first input ``[T, B, ...]`` → spikes ``[T, B, ...]``.

    Args:
        k: membrane decay (``k = e^{−dt/τ}``); the paper's code uses 0.2; ``k = 1`` is IF.
        v_th: firing threshold V_th.
        surrogate: ``rect`` (default), ``polynomial``, ``sigmoid`` or ``gaussian``.
        width: the surrogate's width parameter ``a`` (None: the curve's default).
        reset: ``"zero"`` (the paper) or ``"subtract"`` (soft reset by V_th).
        u0: the membrane potential before the first step.
    """

    def __init__(self, k: float = 0.2, v_th: float = 0.5, surrogate: str = "rect",
                 width: float | None = None, reset: str = "zero", u0: float = 0.0) -> None:
        super().__init__()
        if surrogate not in SURROGATES:
            raise ValueError(f"unknown surrogate {surrogate!r}; choose one of {', '.join(SURROGATES)}")
        if reset not in RESETS:
            raise ValueError(f"unknown reset {reset!r}; choose one of {', '.join(RESETS)}")
        if not 0.0 <= k <= 1.0:
            raise ValueError(f"decay k must be in [0, 1], got {k}")
        self.k, self.v_th, self.surrogate, self.width = float(k), float(v_th), surrogate, width
        self.reset, self.u0 = reset, float(u0)
        self.record_rate = False  # when set, forward records the mean rate and the spikes per sample and step
        self.rate: torch.Tensor | None = None
        self.spikes_per_step: torch.Tensor | None = None

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        if inp.dtype in (torch.bfloat16, torch.float16):
            inp = inp.float()
        if self.training and torch.is_grad_enabled():
            out = _LIFSeq.apply(inp, self.k, self.v_th, self.surrogate, self.width, self.reset, self.u0)
        else:
            u = self.initial_u(inp[0])
            o = torch.zeros_like(inp[0])
            spikes = []
            for t in range(inp.shape[0]):
                u, o = self.step(inp[t], u, o)
                spikes.append(o)
            out = torch.stack(spikes)
        if self.record_rate:
            self.rate = out.detach().float().mean()
            self.spikes_per_step = out.detach().float().flatten(2).sum(dim=(1, 2)) / out.shape[1]
        return out

    def initial_u(self, like: torch.Tensor) -> torch.Tensor:
        """The membrane before the first step: ``u0`` everywhere."""
        return torch.zeros_like(like) if self.u0 == 0.0 else torch.full_like(like, self.u0)

    def step(self, i_t: torch.Tensor, u: torch.Tensor, o: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step (eval semantics): returns the new ``(u, o)``."""
        u = _update(u, o, i_t, self.k, self.v_th, self.reset)
        return u, (u >= self.v_th).to(i_t.dtype)

    def extra_repr(self) -> str:
        extra = "" if self.reset == "zero" and self.u0 == 0.0 else f", reset={self.reset}, u0={self.u0}"
        return f"k={self.k}, v_th={self.v_th}, surrogate={self.surrogate}, width={self.width}{extra}"
