r"""NeuNorm (Wu et al., AAAI 2019, sec. "Neuron Normalization").

For a layer's spikes ``o_f[t]`` (F feature maps of H×W), one auxiliary neuron per position
integrates the spikes of all F maps at that position:

    a[t]   = k2 · a[t−1] + (v/F) · Σ_f o_f[t]          a[0] = 0,  a: [H, W]
    s_f[t] = o_f[t] − e_f(h, w) · a[t]                  (what the next layer receives)

Our reading of what the paper leaves open:
- the scale ``e`` is trainable per feature map and position (``[F, H, W]``) and starts at 0,
  so a fresh NeuNorm is the identity and training decides how much of ``a`` to subtract;
- ``v = 1 − k2`` by default, so ``a`` is an exponential moving average of the
  across-map firing rate and stays in [0, 1] (the paper's v is an unspecified constant);
- NeuNorm sits right after a conv layer's LIF, before any pooling.

The recursion is linear, so the whole sequence is one product with the lower-triangular
decay matrix ``D[t, s] = k2^{t−s}`` (s ≤ t); :meth:`step` gives the one-step form.
"""
from __future__ import annotations

import torch
from torch import nn


class NeuNorm(nn.Module):
    def __init__(self, channels: int, height: int, width: int, k2: float = 0.9,
                 v: float | None = None) -> None:
        super().__init__()
        self.k2 = float(k2)
        self.v = float(1.0 - k2 if v is None else v)
        self.channels = channels
        self.scale = nn.Parameter(torch.zeros(channels, height, width))

    def decay_matrix(self, steps: int, ref: torch.Tensor) -> torch.Tensor:
        """``D[t, s] = k2^(t-s)`` for ``s ≤ t``, else 0. The powers are float64 products rounded once, not a
        vectorised ``pow`` (whose last bit differs between AVX2 and AVX-512 kernels), so the matrix, a constant
        in the exported ONNX graph, has the same bits on every CPU."""
        powers = [1.0]
        for _ in range(steps - 1):
            powers.append(powers[-1] * self.k2)
        rows = [[powers[t - s] if s <= t else 0.0 for s in range(steps)] for t in range(steps)]
        return torch.tensor(rows, dtype=ref.dtype, device=ref.device)

    def auxiliary(self, spikes: torch.Tensor) -> torch.Tensor:
        """``a[t]`` for time-first spikes ``[T, B, F, H, W]`` → ``[T, B, 1, H, W]``."""
        drive = spikes.mean(dim=2, keepdim=True) * self.v  # (v/F) Σ_f o_f[t]
        d = self.decay_matrix(spikes.shape[0], spikes)
        return torch.einsum("ts,sbchw->tbchw", d, drive)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        return spikes - self.scale * self.auxiliary(spikes)

    def step(self, o_t: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step on ``[B, F, H, W]`` spikes: returns ``(s[t], a[t])``."""
        a = self.k2 * a + self.v * o_t.mean(dim=1, keepdim=True)
        return o_t - self.scale * a, a

    def extra_repr(self) -> str:
        return f"channels={self.channels}, k2={self.k2}, v={self.v}"
