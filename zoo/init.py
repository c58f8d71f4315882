r"""Initialisation that makes every layer fire.

PyTorch's default (Kaiming-uniform, ``std = 1/√(3·fan_in)``) gives pre-activations far below
``V_th`` once inputs are sparse spikes, so deep layers stay silent and the surrogate gradient
(non-zero only near threshold) vanishes. We pick each weight layer's scale from the second
moment of its input, ``m2 = E[x²]``, so the synaptic current ``I = W·x`` has
``std(I) = gain · V_th``:

    W ~ N(0, σ²),   σ = gain · V_th / √(fan_in · m2),   b = 0

and propagate ``m2`` layer by layer: after a LIF ``m2 = r`` (binary spikes, expected rate ``r``),
after p×p average pooling of spikes ``m2 = r/p² + r²(1 − 1/p²)``, after BN ``m2 = 1`` (BN then
sets the scale itself, so the weight scale only needs to be sane). With ``gain = 1`` a Gaussian
current crosses ``V_th`` about 16 % of the time; ``r = 0.15`` is the rate we assume downstream.
The first layer's ``m2`` is the input's: ~0.1 for binary N-MNIST frames at T = 8, 1 for
normalised images (stored per model as ``input_m2``).
"""
from __future__ import annotations

import math

import torch
from torch import nn

ASSUMED_RATE = 0.15


def init_for_firing(layers: list[tuple[nn.Module, str]], v_th: float, input_m2: float,
                    gain: float = 1.0, generator: torch.Generator | None = None) -> None:
    """Initialise ``layers``: ``(weight_module, what_follows)`` in order, where
    ``what_follows`` is ``"lif"``, ``"bn"`` or ``"pool<p>"`` describing what changes m2
    before the next weight layer."""
    m2 = input_m2
    for module, after in layers:
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()
            std = gain * v_th / math.sqrt(fan_in * m2)
            with torch.no_grad():
                module.weight.normal_(0.0, std, generator=generator)
                if module.bias is not None:
                    module.bias.zero_()
        for step in after.split(","):
            if step == "lif":
                m2 = ASSUMED_RATE
            elif step == "bn":
                m2 = 1.0
            elif step.startswith("pool"):
                p2 = int(step[4:]) ** 2
                m2 = m2 / p2 + m2 * m2 * (1 - 1 / p2)
