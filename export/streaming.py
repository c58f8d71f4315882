r"""One time step of a :class:`SpikingNet` with its state made explicit, for live cameras.

Per step t, with the state of step t−1 as inputs (all zeros at t = 0):

    LIF j:      u_j[t], o_j[t] = LIF.step(I_j[t], u_j[t−1] + u0_j·[steps[t−1] = 0], o_j[t−1])
    NeuNorm j:  s[t], a_j[t]   = NeuNorm.step(o[t], a_j[t−1])
    voting:     votes[t] = votes[t−1] + o_out[t],   steps[t] = steps[t−1] + 1
    scores[t]   = group mean of votes[t] / steps[t]

After T steps, ``scores`` is the unrolled network's output: the voting mean over T steps.
Reset a stream by feeding zeros as the state again: a neuron's initial membrane ``u0`` (0 unless
the model sets it) is added inside the graph at the first step, so all-zero state is always fresh.
"""
from __future__ import annotations

import torch
from torch import nn

from ..zoo.layers import TimeDistributed
from ..zoo.lif import LIF
from ..zoo.network import SpikingNet
from ..zoo.neunorm import NeuNorm


class StreamingNet(nn.Module):
    """``forward(x_t, state) -> (scores, *next_state)`` for one step of ``net`` (eval mode).

    ``x_t`` is one frame ``[B, P, H, W]`` (events) or the image ``[B, C, H, W]`` (encoding-layer
    models: the image drives the first conv at every step). ``state`` is the list named by
    :attr:`state_names`, each ``[B, *shape]`` with shape :attr:`state_shapes`.
    """

    def __init__(self, net: SpikingNet) -> None:
        super().__init__()
        self.net = net
        self.state_names: list[str] = []
        self.state_meanings: list[str] = []
        lif = nn_count = 0
        for layer in net.layers:
            if isinstance(layer, LIF):
                self.state_names += [f"lif{lif}_u", f"lif{lif}_o"]
                self.state_meanings += [f"membrane potential u of LIF layer {lif}",
                                        f"spikes o of LIF layer {lif} at the previous step"]
                lif += 1
            elif isinstance(layer, NeuNorm):
                self.state_names.append(f"neunorm{nn_count}_a")
                self.state_meanings.append(f"NeuNorm auxiliary neurons a of NeuNorm layer {nn_count}")
                nn_count += 1
        self.state_names += ["votes", "steps"]
        self.state_meanings += ["voting-layer spike counts summed over the steps so far",
                                "number of steps so far"]
        with torch.no_grad():
            probe = self._step(torch.zeros(1, *net.in_shape), None)
        self.state_shapes = [list(t.shape[1:]) for t in probe[1:]]

    def initial_state(self, batch: int, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
        """Zeros for every state input."""
        return [torch.zeros(batch, *s, dtype=dtype) for s in self.state_shapes]

    def forward(self, x: torch.Tensor, state: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return self._step(x, state)

    def _step(self, x: torch.Tensor, state: list[torch.Tensor] | None) -> tuple[torch.Tensor, ...]:
        prev = iter(state) if state is not None else None
        fresh = (state[-1] == 0).to(x.dtype) if state is not None else torch.ones(x.shape[0], 1, dtype=x.dtype)

        def take(like: torch.Tensor) -> torch.Tensor:
            return next(prev) if prev is not None else torch.zeros_like(like)

        new: list[torch.Tensor] = []
        h = x
        for layer in self.net.layers:
            if isinstance(layer, LIF):
                u_prev = take(h)
                if layer.u0 != 0.0:
                    u_prev = u_prev + layer.u0 * fresh.reshape(-1, *([1] * (h.dim() - 1)))
                u, o = layer.step(h, u_prev, take(h))
                new += [u, o]
                h = o
            elif isinstance(layer, NeuNorm):
                h, a = layer.step(h, take(h[:, :1]))
                new.append(a)
            elif isinstance(layer, TimeDistributed):
                h = layer.module(h)
            else:  # the encoding layer's stateless block, applied to the image
                h = layer(h)
        votes = take(h) + h
        steps = take(h[:, :1]) + 1
        scores = self.net.voting((votes / steps).unsqueeze(0))
        return (scores, *new, votes, steps)
