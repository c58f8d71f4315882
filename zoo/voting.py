r"""Voting output layer: ``neurons_per_class`` spiking neurons per class.

    score_c = (1 / (T · n)) · Σ_t Σ_{j ∈ group c} o_j[t]

i.e. a class's score is its group's mean firing rate, in [0, 1].
"""
from __future__ import annotations

import torch
from torch import nn


class Voting(nn.Module):
    """Time-first spikes ``[T, B, num_classes · n]`` → class scores ``[B, num_classes]``."""

    def __init__(self, num_classes: int, neurons_per_class: int = 10) -> None:
        super().__init__()
        self.num_classes, self.neurons_per_class = num_classes, neurons_per_class

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        rates = spikes.mean(dim=0)
        return rates.reshape(rates.shape[0], self.num_classes, self.neurons_per_class).mean(dim=2)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, neurons_per_class={self.neurons_per_class}"
