"""Stateless layers over time and the paper's architecture notation.

Stateless layers (conv, pooling, linear, BN) run once on the flattened ``[T·B, ...]`` batch.
The notation is the paper's: ``128C3`` = 128 3×3 conv maps (stride 1, padding 1),
``AP2`` = 2×2 average pooling, ``1024FC`` = fully connected layer of 1024 neurons,
``Voting`` = the voting output; a ``(enc)`` suffix marks the encoding layer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn


class TimeDistributed(nn.Module):
    """Apply ``module`` to ``[T, B, ...]`` by folding T into the batch."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps, batch = x.shape[0], x.shape[1]
        y = self.module(x.flatten(0, 1))
        return y.unflatten(0, (steps, batch))


@dataclass(frozen=True)
class LayerSpec:
    kind: str  # "conv", "pool", "fc" or "voting"
    size: int = 0  # channels / neurons / pooling window
    kernel: int = 0
    encoding: bool = False


_TOKEN = re.compile(r"^(?:(\d+)C(\d+)(\(enc\))?|AP(\d+)|(\d+)FC|Voting)$")


def parse_arch(arch: str) -> list[LayerSpec]:
    """Parse ``"128C3(enc)-256C3-AP2-1024FC-Voting"`` into layer specs."""
    specs = []
    for token in arch.split("-"):
        m = _TOKEN.match(token.strip())
        if not m:
            raise ValueError(f"bad layer {token!r} in architecture {arch!r}")
        if m.group(1):
            specs.append(LayerSpec("conv", int(m.group(1)), int(m.group(2)), bool(m.group(3))))
        elif m.group(4):
            specs.append(LayerSpec("pool", int(m.group(4))))
        elif m.group(5):
            specs.append(LayerSpec("fc", int(m.group(5))))
        else:
            specs.append(LayerSpec("voting"))
    if not specs or specs[-1].kind != "voting":
        raise ValueError(f"architecture {arch!r} must end with Voting")
    if any(s.encoding for s in specs[1:]):
        raise ValueError(f"only the first layer can be the encoding layer in {arch!r}")
    return specs
