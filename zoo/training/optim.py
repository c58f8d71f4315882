r"""Optimisers and learning-rate schedules, stepped once per optimizer step.

The schedule is ``lr(s) = lr · f(s)`` with ``f`` a pure function of the global step ``s``
(``E`` epochs of ``S`` steps, ``N = E·S``), times a linear warm-up ``min(1, (s+1)/W)``:

- ``step``:     ``f = γ^{⌊(s/S)/step_epochs⌋}``, or ``γ^{#{m ∈ milestones : m ≤ s/S}}``
- ``cosine``:   ``f = r + (1 − r) · ½ (1 + cos(π s/N))``, ``r`` = ``min_lr_ratio``
- ``onecycle``: cosine from 1/25 up to 1 over ``pct_start · N`` steps, then down to 1/(25·10⁴)
- ``constant``: ``f = 1``
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn


def build_optimizer(params, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    o = cfg["optim"]
    if o["name"] == "sgd":
        return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"], nesterov=o["nesterov"],
                               weight_decay=o["weight_decay"])
    cls = torch.optim.AdamW if o["name"] == "adamw" else torch.optim.Adam
    return cls(params, lr=o["lr"], betas=tuple(o["betas"]), weight_decay=o["weight_decay"])


def lr_factor(cfg: dict[str, Any], steps_per_epoch: int) -> Callable[[int], float]:
    """``f(step)`` of the config's schedule (see the module docstring)."""
    s = cfg["schedule"]
    total = max(cfg["train"]["epochs"] * steps_per_epoch, 1)
    warm = s["warmup_epochs"] * steps_per_epoch

    def main(step: int) -> float:
        epoch = step / steps_per_epoch
        if s["name"] == "step":
            n = sum(m <= epoch for m in s["milestones"]) if s["milestones"] else int(epoch // s["step_epochs"])
            return s["gamma"] ** n
        if s["name"] == "cosine":
            r = s["min_lr_ratio"]
            return r + (1 - r) * 0.5 * (1 + math.cos(math.pi * min(step / total, 1.0)))
        if s["name"] == "onecycle":
            lo, end, up = 1 / 25, 1 / 25e4, max(s["pct_start"] * total, 1)
            if step < up:
                return lo + (1 - lo) * 0.5 * (1 - math.cos(math.pi * step / up))
            p = min((step - up) / max(total - up, 1), 1.0)
            return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * p))
        return 1.0

    def factor(step: int) -> float:
        return main(step) * (min(1.0, (step + 1) / warm) if warm > 0 else 1.0)

    return factor


def build_scheduler(opt: torch.optim.Optimizer, cfg: dict[str, Any],
                    steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(cfg, steps_per_epoch))


def loss_fn(cfg: dict[str, Any], num_classes: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    r"""``mse``: mean of ``(score − target)²`` with ``target`` the one-hot label smoothed to
    ``(1 − ε)·onehot + ε/C`` (the authors' STBP code: MSE on voted rates);
    ``ce``: cross-entropy of ``ce_scale · score`` with label smoothing ``ε``."""
    spec = cfg["loss"]
    eps = spec["label_smoothing"]
    if spec["name"] == "ce":
        scale = spec["ce_scale"]
        return lambda scores, y: nn.functional.cross_entropy(scale * scores, y, label_smoothing=eps)

    def mse(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        target = nn.functional.one_hot(y, num_classes).to(scores.dtype) * (1 - eps) + eps / num_classes
        return nn.functional.mse_loss(scores, target)

    return mse
