r"""Function-preserving widening of a trained `SpikingNet`'s conv layers (Net2WiderNet, Chen et
al., ICLR 2016, for spiking layers).

A conv layer of ``C`` maps widened ``r``-fold gets maps ``j = 0 … rC−1`` as copies of map
``j mod C``: the same incoming weights and bias, so the copies' membranes, spikes and NeuNorm
sums are those of the original map (NeuNorm's ``(v/F) Σ_f o_f`` is a mean over maps, unchanged by
duplicating every map ``r`` times; its scale ``e`` is copied too). What reads a widened layer
splits each original weight ``w`` among the ``r`` copies of its input:

    w'_{copy m} = α_m · w,   α_m ≥ 0,   Σ_m α_m = 1

(the next conv, or the first FC through the flatten), so every downstream current is unchanged up
to float rounding. The split ``α`` is drawn per input map (uniform, then normalised), not ``1/r``,
and the copies' incoming weights get a small Gaussian perturbation ``σ·sd(W)``: both break the
symmetry that would otherwise keep the copies identical under training (with Adam's normalised
steps a split alone does not: the copies' gradients differ only by the factor α). ``σ = 0`` keeps
the network's function exactly (up to rounding).
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import TimeDistributed
from .network import SpikingNet
from .neunorm import NeuNorm


def _inner(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, TimeDistributed) else module


@torch.no_grad()
def widen(src: SpikingNet, dst: SpikingNet, seed: int = 0, noise: float = 0.01) -> SpikingNet:
    """Fill ``dst`` (the same architecture as ``src`` with every conv ``r``-fold wider, ``r`` an
    integer per layer; FC sizes equal) from ``src``'s weights so that it computes ``src``'s
    function (module docstring); ``noise`` is ``σ``. Returns ``dst``."""
    gen = torch.Generator().manual_seed(seed)
    if len(src.layers) != len(dst.layers):
        raise ValueError("widen: source and target differ in depth")
    reps = 1  # how often each map of the current activation is repeated in dst
    split = None  # α per (copy, original map) of the current activation: [reps, C]
    for a, b in zip(src.layers, dst.layers):
        ia, ib = _inner(a), _inner(b)
        if type(ia) is not type(ib):
            raise ValueError(f"widen: layer mismatch {type(ia).__name__} vs {type(ib).__name__}")
        if isinstance(ia, nn.Conv2d):
            out_a, in_a = ia.weight.shape[:2]
            out_b = ib.weight.shape[0]
            if out_b % out_a or ib.weight.shape[1] != in_a * reps:
                raise ValueError(f"widen: conv {in_a}→{out_a} cannot become {ib.weight.shape[1]}→{out_b}")
            w = ia.weight if split is None else ia.weight.repeat(1, reps, 1, 1) * split.reshape(1, -1, 1, 1)
            w = w.repeat(out_b // out_a, 1, 1, 1)
            w[out_a:] += noise * ia.weight.std() * torch.randn(w[out_a:].shape, generator=gen)
            ib.weight.copy_(w)
            if ia.bias is not None:
                ib.bias.copy_(ia.bias.repeat(out_b // out_a))
            reps = out_b // out_a
            alpha = torch.rand(reps, out_a, generator=gen) + 0.5
            split = alpha / alpha.sum(0, keepdim=True) if reps > 1 else None
        elif isinstance(ia, NeuNorm):
            ib.scale.copy_(ia.scale.repeat(reps, 1, 1))
        elif isinstance(ia, nn.Linear) and split is not None:  # the first FC after the flatten
            c = split.shape[1]
            hw = ia.weight.shape[1] // c
            w = ia.weight.reshape(-1, 1, c, hw) * split[None, :, :, None]
            ib.weight.copy_(w.reshape(ib.weight.shape))
            ib.bias.copy_(ia.bias)
            reps, split = 1, None
        else:
            pa, pb = dict(ia.named_parameters(recurse=False)), dict(ib.named_parameters(recurse=False))
            for name, p in pa.items():
                if pb[name].shape != p.shape:
                    raise ValueError(f"widen: {type(ia).__name__}.{name} changes shape; only convs widen")
                pb[name].copy_(p)
    return dst
