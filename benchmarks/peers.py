r"""Our networks rebuilt in SpikingJelly 2.0 and snnTorch with the same weights.

Our LIF (zoo/lif.py): ``u[t] = k·u[t-1]·(1 − o[t-1]) + I[t]``, ``o[t] = (u[t] ≥ V_th)``.

SpikingJelly ``LIFNode(tau, decay_input=False, v_reset=0)``: charge
``h[t] = v[t-1] − (v[t-1] − 0)/tau + I[t]``, fire ``s = (h ≥ V_th)``, hard reset
``v[t] = h[t]·(1 − s[t])``. With ``tau = 1/(1 − k)``, ``v − v/tau = k·v`` (up to float
rounding: ``v − v/1.25`` is not bit-identical to ``0.2·v``, which can flip a spike that lands
within an ulp of the threshold). Same threshold test (``>=``). Its backward with
``detach_reset=False`` is the full STBP gradient, as ours; ``PiecewiseQuadratic(alpha)`` is
our ``polynomial`` surrogate with ``alpha = √a/2``.

snnTorch ``Leaky(beta=k, threshold=V_th, reset_mechanism="zero")`` (``reset_delay=True``):
``reset = H(mem[t-1] − V_th)`` (detached), ``mem[t] = k·(1 − reset)·mem[t-1] + I[t]``,
``spk = H(mem[t] − V_th)`` — the same recursion, but its Heaviside is ``>`` (strict) where ours
is ``>=``, and no gradient flows through the reset. It runs in snnTorch's idiom: one loop over
time through every layer.

The peers have no NeuNorm: compare with ``create_model(name, neunorm=False)``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from snnzoo.zoo.layers import TimeDistributed
from snnzoo.zoo.lif import LIF
from snnzoo.zoo.network import SpikingNet
from snnzoo.zoo.neunorm import NeuNorm

PEERS = ("spikingjelly", "snntorch")


def _stateless(module: nn.Module) -> nn.Module:
    inner = module.module if isinstance(module, TimeDistributed) else module
    if isinstance(inner, nn.Sequential):
        raise ValueError("peers: BN inside a layer is not supported (use a model with bn=False)")
    return inner


def _check(net: SpikingNet) -> None:
    if net.encoding:
        raise ValueError("peers: encoding-layer (image) models are not supported; use an event model")
    if any(isinstance(m, NeuNorm) for m in net.modules()):
        raise ValueError("peers: SpikingJelly/snnTorch have no NeuNorm; build the model with neunorm=False")


def _copy(src: nn.Module, dst: nn.Module) -> nn.Module:
    dst.load_state_dict(src.state_dict())
    return dst


def _lifs(net: SpikingNet) -> LIF:
    lifs = [m for m in net.modules() if isinstance(m, LIF)]
    if len({(m.k, m.v_th) for m in lifs}) != 1:
        raise ValueError("peers: all LIF layers must share k and v_th")
    return lifs[0]


def sj_surrogate(lif: LIF):
    """SpikingJelly's surrogate equal to ours where one exists (polynomial ↔ PiecewiseQuadratic)."""
    from spikingjelly.activation_based import surrogate

    if lif.surrogate == "polynomial":
        a = 1.0 if lif.width is None else lif.width
        return surrogate.PiecewiseQuadratic(alpha=math.sqrt(a) / 2)
    if lif.surrogate == "sigmoid":
        a = 0.25 if lif.width is None else lif.width
        return surrogate.Sigmoid(alpha=1 / a)
    # rect and gaussian have no fused SpikingJelly counterpart: its default keeps the fast path
    return surrogate.PiecewiseQuadratic(alpha=0.5)


class SJNet(nn.Module):
    """SpikingJelly multi-step network: input ``[B, T, C, H, W]`` → voted scores ``[B, classes]``."""

    def __init__(self, net: SpikingNet) -> None:
        super().__init__()
        _check(net)
        from spikingjelly.activation_based import layer, neuron

        ref = _lifs(net)
        mods: list[nn.Module] = []
        for m in net.layers:
            if isinstance(m, LIF):
                mods.append(neuron.LIFNode(tau=1.0 / (1.0 - m.k), decay_input=False, v_threshold=m.v_th,
                                           v_reset=0.0, surrogate_function=sj_surrogate(ref),
                                           detach_reset=False, step_mode="m"))
                continue
            inner = _stateless(m)
            if isinstance(inner, nn.Conv2d):
                mods.append(_copy(inner, layer.Conv2d(inner.in_channels, inner.out_channels,
                                                      inner.kernel_size, padding=inner.padding,
                                                      bias=inner.bias is not None, step_mode="m")))
            elif isinstance(inner, nn.AvgPool2d):
                mods.append(layer.AvgPool2d(inner.kernel_size, step_mode="m"))
            elif isinstance(inner, nn.Flatten):
                mods.append(layer.Flatten(step_mode="m"))
            elif isinstance(inner, nn.Linear):
                mods.append(_copy(inner, layer.Linear(inner.in_features, inner.out_features,
                                                      bias=inner.bias is not None, step_mode="m")))
            else:
                raise ValueError(f"peers: no SpikingJelly counterpart for {inner!r}")
        mods.append(layer.VotingLayer(net.voting.neurons_per_class, step_mode="m"))
        self.body = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from spikingjelly.activation_based import functional

        functional.reset_net(self.body)
        return self.body(x.transpose(0, 1)).mean(0)


class SnnTorchNet(nn.Module):
    """snnTorch network, stepped through time: ``[B, T, C, H, W]`` → voted scores ``[B, classes]``."""

    def __init__(self, net: SpikingNet) -> None:
        super().__init__()
        _check(net)
        import snntorch as snn

        self.npc = net.voting.neurons_per_class
        mods: list[nn.Module] = []
        for m in net.layers:
            if isinstance(m, LIF):
                mods.append(snn.Leaky(beta=m.k, threshold=m.v_th, reset_mechanism="zero"))
                continue
            inner = _stateless(m)
            if isinstance(inner, (nn.Conv2d, nn.Linear)):
                mods.append(_copy(inner, type(inner)(*_shape_args(inner), bias=inner.bias is not None,
                                                     **_conv_kw(inner))))
            elif isinstance(inner, nn.AvgPool2d):
                mods.append(nn.AvgPool2d(inner.kernel_size))
            elif isinstance(inner, nn.Flatten):
                mods.append(nn.Flatten())
            else:
                raise ValueError(f"peers: no snnTorch counterpart for {inner!r}")
        self.layers = nn.ModuleList(mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import snntorch as snn

        mems = {i: m.reset_mem() for i, m in enumerate(self.layers) if isinstance(m, snn.Leaky)}
        total = None
        for t in range(x.shape[1]):
            h = x[:, t]
            for i, m in enumerate(self.layers):
                if i in mems:
                    h, mems[i] = m(h, mems[i])
                else:
                    h = m(h)
            total = h if total is None else total + h
        rates = total / x.shape[1]
        return rates.reshape(rates.shape[0], -1, self.npc).mean(2)


def _shape_args(m: nn.Module) -> tuple:
    if isinstance(m, nn.Conv2d):
        return m.in_channels, m.out_channels, m.kernel_size
    return m.in_features, m.out_features


def _conv_kw(m: nn.Module) -> dict:
    return {"padding": m.padding} if isinstance(m, nn.Conv2d) else {}


def build_peer(name: str, net: SpikingNet) -> nn.Module:
    """``"spikingjelly"`` or ``"snntorch"`` copy of ``net`` (same weights, same mode)."""
    peer = {"spikingjelly": SJNet, "snntorch": SnnTorchNet}[name](net)
    return peer.train(net.training)


def available(name: str) -> str | None:
    """None when peer ``name`` imports, else the reason it does not."""
    module = {"spikingjelly": "spikingjelly.activation_based.neuron", "snntorch": "snntorch"}[name]
    try:
        __import__(module)
    except Exception as e:  # a peer's import can fail on missing optional deps too
        return f"{type(e).__name__}: {e}"
    return None
