r"""Export to NIR (Neuromorphic Intermediate Representation; ``pip install snnzoo[nir]``).

NIR describes one time step of a network in continuous-time primitives; a simulator picks the
step ``dt``. Our chain maps node by node: Conv2d → ``nir.Conv2d``, AvgPool2d →
``nir.AvgPool2d``, Flatten → ``nir.Flatten`` (dims counted without the batch axis), Linear →
``nir.Affine``; BatchNorm (eval) is folded into the preceding conv/linear weights
(``w' = w·γ/√(σ²+ε)``, ``b' = (b−μ)·γ/√(σ²+ε) + β``).

LIF. NIR's ``nir.LIF`` is ``τ·dv/dt = (v_leak − v) + R·I``, spike when ``v > v_th``, then
``v ← v_reset``. Forward Euler with step ``dt`` gives ``v[t] = (1 − dt/τ)·v[t−1] + (dt/τ)·R·I[t]``,
which is our ``u[t] = k·u[t−1] + I[t]`` with

    τ = dt / (1 − k),   R = 1 / (1 − k),   v_leak = 0,   v_threshold = V_th,   v_reset = 0.

Our reset ``u[t] = k·u[t−1]·(1 − o[t−1]) + I[t]`` is reset-to-zero after the spike, i.e. NIR's
``v_reset = 0``. Two things do not map exactly, and are recorded in the graph's metadata:
a simulator that integrates exactly (``v[t] = e^{−dt/τ}·v[t−1] + …``) instead of with forward
Euler sees the decay ``e^{−(1−k)}`` (0.449 for k = 0.2) rather than k; and NIR fires on
``v > V_th`` where we fire on ``u ≥ V_th`` (different only when ``u`` equals ``V_th`` exactly).

Voting. The output LIF layer is followed by ``nir.Linear`` with the group-mean matrix
(``1/n`` for the n neurons of each class), so the graph outputs per-step class rates; the
class score is their mean over the T steps. The encoding layer of image models receives the
same image at every step. NeuNorm has no NIR primitive: models with it are refused.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..zoo.layers import TimeDistributed
from ..zoo.lif import LIF
from ..zoo.network import SpikingNet
from ..zoo.neunorm import NeuNorm
from .onnx import prepare


def _nir():
    try:
        import nir
    except ImportError:
        raise ImportError("NIR export needs the `nir` package: pip install 'snnzoo[nir]'") from None
    return nir


def _fold(block: nn.Module) -> tuple[nn.Module, np.ndarray, np.ndarray]:
    """``(conv or linear, weight, bias)`` with an eval-mode BatchNorm folded in."""
    mods = list(block) if isinstance(block, nn.Sequential) else [block]
    layer = mods[0]
    w = layer.weight.detach().double().numpy()
    b = (layer.bias.detach().double().numpy() if layer.bias is not None else np.zeros(w.shape[0]))
    for bn in mods[1:]:
        if not isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)):
            raise ValueError(f"NIR export: unsupported layer {type(bn).__name__}")
        g = (bn.weight.detach().double() / (bn.running_var.double() + bn.eps).sqrt()).numpy()
        w = w * g.reshape(-1, *([1] * (w.ndim - 1)))
        b = (b - bn.running_mean.double().numpy()) * g + bn.bias.detach().double().numpy()
    return layer, w.astype(np.float32), b.astype(np.float32)


def to_nir(model: SpikingNet, time_steps: int | None = None, dt: float = 1.0):
    """The ``nir.NIRGraph`` of ``model`` (one time step; see the module docstring)."""
    nir = _nir()
    net = prepare(model, time_steps)
    if any(isinstance(m, NeuNorm) for m in net.modules()):
        raise ValueError("NIR has no NeuNorm node; export with neunorm=False")
    shape = list(net.in_shape)
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(shape)})}
    counts: dict[str, int] = {}

    def add(kind: str, node) -> None:
        i = counts.get(kind, 0)
        counts[kind] = i + 1
        nodes[f"{kind}{i}"] = node

    for layer in net.layers:
        inner = layer.module if isinstance(layer, TimeDistributed) else layer
        head = inner[0] if isinstance(inner, nn.Sequential) else inner
        if isinstance(layer, LIF):
            k = layer.k
            full = lambda v: np.full(shape, v, np.float32)  # noqa: E731
            add("lif", nir.LIF(tau=full(dt / (1 - k)), r=full(1 / (1 - k)), v_leak=full(0.0),
                               v_threshold=full(layer.v_th), v_reset=full(0.0),
                               metadata={"k": k, "v_th": layer.v_th, "dt": dt}))
        elif isinstance(head, nn.Conv2d):
            conv, w, b = _fold(inner)
            add("conv", nir.Conv2d(input_shape=tuple(shape[1:]), weight=w, stride=conv.stride,
                                   padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=b))
            shape = [w.shape[0], *shape[1:]]
        elif isinstance(head, nn.AvgPool2d):
            k = head.kernel_size
            add("pool", nir.AvgPool2d(kernel_size=np.array([k, k]), stride=np.array([k, k]),
                                      padding=np.array([0, 0])))
            shape = [shape[0], shape[1] // k, shape[2] // k]
        elif isinstance(head, nn.Flatten):
            add("flatten", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1))
            shape = [int(np.prod(shape))]
        elif isinstance(head, nn.Linear):
            _, w, b = _fold(inner)
            add("fc", nir.Affine(weight=w, bias=b))
            shape = [w.shape[0]]
        else:
            raise ValueError(f"NIR export does not support {type(head).__name__}")
    per_class = net.voting.neurons_per_class
    group = np.kron(np.eye(net.num_classes), np.full((1, per_class), 1 / per_class)).astype(np.float32)
    nodes["readout"] = nir.Linear(weight=group)
    nodes["output"] = nir.Output(output_type={"output": np.array([net.num_classes])})
    names = list(nodes)
    graph = nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])),
                         metadata=_graph_metadata(net.config, dt))
    return graph


def _graph_metadata(config: dict[str, Any], dt: float) -> dict[str, Any]:
    m = config["model"]
    return {
        "model_id": config.get("name", "model"), "arch": config["arch"], "classes": list(config["classes"]),
        "time_steps": int(m["time_steps"]), "dt": dt, "input_kind": config["input"]["kind"],
        "neuron": (f"discrete LIF u[t]=k*u[t-1]*(1-o[t-1])+I[t], o=(u>=v_th), k={m['k']}, v_th={m['v_th']}; "
                   "as nir.LIF with forward Euler: tau=dt/(1-k), r=1/(1-k), v_leak=0, v_reset=0"),
        "caveats": ("exact for forward-Euler simulators with this dt; exact-exponential integration "
                    "decays by exp(-(1-k)) instead of k; NIR fires on v > v_th, we on u >= v_th"),
        "readout": "output = per-step class rates (voting-group means); class score = mean over time_steps",
    }


def export_nir(model: SpikingNet, path: str | Path, time_steps: int | None = None, dt: float = 1.0) -> Path:
    """Write ``model``'s NIR graph to ``path`` (HDF5, ``nir.write``) and return it."""
    path = Path(path)
    graph = to_nir(model, time_steps, dt)
    path.parent.mkdir(parents=True, exist_ok=True)
    _nir().write(str(path), graph)
    return path
