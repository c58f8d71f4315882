r"""Import a NIR graph as a :class:`SpikingNet` (``snnzoo.zoo.from_nir``, ``create_model("nir:PATH")``).

Accepted: a chain ``Input → [Conv2d → LIF|IF → (AvgPool2d|SumPool2d)?]* → Flatten? →
[Affine|Linear → LIF|IF]+ → (Linear|Affine readout)? → Output`` whose neurons our LIF can express:
``v_leak = 0``, ``v_reset = 0`` (reset to zero), one ``v_threshold`` and one decay for all
neurons of all layers, convolutions with stride 1, "same" padding ``kernel//2``, no dilation or
groups. The discretisation inverts the export's (``snnzoo.export.nir``): forward Euler with the
file's ``dt`` (metadata, else the ``dt`` argument),

    k = 1 − dt/τ,   input scale s = R·dt/τ   (IF: k = 1, s = R·dt),

``s`` folded into the preceding weights and bias (left out when it is 1 to float32 precision),
``k`` rounded to 6 significant digits (float32 parameters carry about 7; ``1 − dt/τ`` loses one).
NIR fires on ``v > θ``: we take ``V_th`` = the float32 just above ``θ`` (files for SpikingJelly and
sinabs, which fire on ``≥``, hold ``V_th`` itself). Files
written for ``--target sinabs`` use its convention: ``k = e^{−1/τ}``, ``s = 1``, the reset
recorded in the neuron metadata; ``--target norse`` IF nodes use Norse's ``v ← v + R·I`` (no dt).
A SumPool2d's window ``kh·kw`` is folded into the next layer's
weights. The readout, if present, must be the voting group-mean matrix (``n`` neurons per class);
without one, each output neuron is a class. Anything else raises ``ValueError`` naming the node.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..runtime.specs import input_from_dict
from .layers import TimeDistributed
from .network import SpikingNet

_FLOAT = np.float32
_FIRES_GE = ("spikingjelly", "sinabs")  # targets whose files hold V_th itself (their importers fire on v ≥ θ)


def _nir():
    try:
        import nir
    except ImportError:
        raise ImportError("NIR import needs the `nir` package: pip install 'snnzoo[nir]'") from None
    return nir


def _meta(value: Any) -> Any:
    """HDF5 hands strings back as bytes and lists as arrays."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [_meta(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _uniform(name: str, what: str, value: np.ndarray) -> float:
    u = np.unique(np.asarray(value, dtype=np.float64))
    if u.size != 1:
        raise ValueError(f"node {name}: {what} differs between neurons; our layers share one value")
    return float(u[0])


def _chain(graph) -> list[str]:
    """Node names from the input to the output; a graph that is not a single chain is refused."""
    nir = _nir()
    succ: dict[str, list[str]] = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
    starts = [n for n, v in graph.nodes.items() if isinstance(v, nir.Input)]
    if len(starts) != 1:
        raise ValueError("the graph must have exactly one Input node")
    order, cur = [starts[0]], starts[0]
    while succ.get(cur):
        if len(succ[cur]) != 1:
            raise ValueError(f"node {cur}: branches; only chains of layers are supported")
        cur = succ[cur][0]
        if cur in order:
            raise ValueError(f"node {cur}: recurrent connection; our layers are feed-forward")
        order.append(cur)
    if len(order) != len(graph.nodes) or not isinstance(graph.nodes[cur], nir.Output):
        raise ValueError("the graph must be one chain from Input to Output")
    return order[1:-1]


def _neuron(name: str, node, dt: float, target: str | None) -> dict[str, Any]:
    """``{k, v_th, s, reset}`` of a nir.LIF / nir.IF node."""
    nir = _nir()
    v_th = _uniform(name, "v_threshold", node.v_threshold)
    if target not in _FIRES_GE:  # NIR's v > θ is our u ≥ (the float32 above θ)
        v_th = float(np.nextafter(_FLOAT(v_th), _FLOAT(np.inf)))
    meta = {k: _meta(v) for k, v in (node.metadata or {}).items()}
    if target == "sinabs":
        tau = _uniform(name, "tau", node.tau) if isinstance(node, nir.LIF) else np.inf
        k = 1.0 if np.isinf(tau) else float(np.exp(-dt / tau))
        return {"k": k, "v_th": v_th, "s": 1.0, "reset": meta.get("reset", "subtract")}
    if _uniform(name, "v_reset", node.v_reset) != 0.0:
        raise ValueError(f"node {name}: v_reset != 0; our neuron resets to zero")
    if isinstance(node, nir.IF):
        r = _uniform(name, "r", node.r)
        return {"k": 1.0, "v_th": v_th, "s": r if target == "norse" else r * dt, "reset": "zero"}
    if _uniform(name, "v_leak", node.v_leak) != 0.0:
        raise ValueError(f"node {name}: v_leak != 0; our neuron leaks towards 0")
    tau, r = _uniform(name, "tau", node.tau), _uniform(name, "r", node.r)
    k = 1.0 if np.isinf(tau) else 1.0 - dt / tau
    if not 0.0 <= k <= 1.0:
        raise ValueError(f"node {name}: tau = {tau:g} gives decay 1 - dt/tau = {k:g} outside [0, 1] at dt = {dt:g}")
    return {"k": k, "v_th": v_th, "s": r * dt / tau if np.isfinite(tau) else r * dt, "reset": "zero"}


def from_nir(source: str | Path | Any, time_steps: int | None = None, dt: float | None = None,
             name: str | None = None) -> SpikingNet:
    """A :class:`SpikingNet` running the NIR graph ``source`` (a path or a ``nir.NIRGraph``).

    ``time_steps`` and ``dt`` default to the graph's metadata (files written by snnzoo carry
    both); a foreign graph needs ``time_steps``, and ``dt`` defaults to 1.
    """
    nir = _nir()
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such NIR file")
        try:
            graph = nir.read(str(path), type_check=False)
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(f"{path}: not a readable NIR file ({e})") from None
    else:
        graph = source
    md = {k: _meta(v) for k, v in (graph.metadata or {}).items()}
    dt = float(dt if dt is not None else md.get("dt", 1.0))
    steps = time_steps or md.get("time_steps")
    if not steps:
        raise ValueError("the graph does not say how many time steps it runs; pass time_steps")
    names = _chain(graph)
    inp = next(v for v in graph.nodes.values() if isinstance(v, nir.Input))
    in_shape = [int(v) for v in np.asarray(next(iter(inp.input_type.values()))).reshape(-1)]
    if len(in_shape) != 3:
        raise ValueError(f"input shape {in_shape}: expected [channels, height, width]")
    image = md.get("input_kind") == "image"

    tokens: list[str] = []
    params: list[tuple[np.ndarray, np.ndarray]] = []  # weight, bias of each weighted layer, in order
    neurons: list[dict[str, Any]] = []
    pool_scale, flat, readout = 1.0, False, None
    nodes = [(n, graph.nodes[n]) for n in names]
    i = 0
    while i < len(nodes):
        n, node = nodes[i]
        nxt = nodes[i + 1][1] if i + 1 < len(nodes) else None
        if isinstance(node, (nir.Conv2d, nir.Affine, nir.Linear)):
            w = np.asarray(node.weight, np.float64)
            b = np.asarray(getattr(node, "bias", None) if getattr(node, "bias", None) is not None
                           else np.zeros(w.shape[0]), np.float64)
            if not isinstance(nxt, (nir.LIF, nir.IF)):
                if i == len(nodes) - 1 and isinstance(node, (nir.Linear, nir.Affine)) and tokens:
                    readout = (n, w, b)
                    i += 1
                    continue
                raise ValueError(f"node {n}: a {type(node).__name__} must be followed by a LIF or IF node")
            neuron = _neuron(nodes[i + 1][0], nxt, dt, md.get("target"))
            w, b = w * pool_scale, b
            pool_scale = 1.0
            if not np.isclose(neuron["s"], 1.0, rtol=1e-6, atol=0.0):
                w, b = w * neuron["s"], b * neuron["s"]
            if isinstance(node, nir.Conv2d):
                if flat:
                    raise ValueError(f"node {n}: convolution after a flatten")
                kh, kw = w.shape[-2:]
                pad = tuple(np.broadcast_to(np.asarray(node.padding), (2,)).tolist())
                if (kh != kw or pad != (kh // 2, kw // 2) or np.any(np.asarray(node.stride) != 1)
                        or np.any(np.asarray(node.dilation) != 1) or int(np.asarray(node.groups)) != 1):
                    raise ValueError(f"node {n}: only square stride-1 convolutions with padding kernel//2, "
                                     "no dilation or groups")
                tokens.append(f"{w.shape[0]}C{kh}" + ("(enc)" if image and not tokens else ""))
            else:
                if not flat:
                    raise ValueError(f"node {n}: a fully connected layer needs a Flatten before it")
                tokens.append(f"{w.shape[0]}FC")
            params.append((w, b))
            neurons.append(neuron)
            i += 2
        elif isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
            k = np.asarray(node.kernel_size).reshape(-1)
            s = np.asarray(node.stride).reshape(-1)
            if k.min() != k.max() or np.any(s != k) or np.any(np.asarray(node.padding) != 0):
                raise ValueError(f"node {n}: only square pooling with stride = kernel and no padding")
            tokens.append(f"AP{int(k[0])}")
            if isinstance(node, nir.SumPool2d):
                pool_scale *= float(k[0] * k[0])
            i += 1
        elif isinstance(node, nir.Flatten):
            flat = True
            i += 1
        else:
            raise ValueError(f"node {n}: {type(node).__name__} has no counterpart in our networks")
    if not neurons or not tokens[-1].endswith("FC"):
        raise ValueError("the graph must end with a fully connected spiking layer (and an optional readout)")
    shared = {(nr["k"], nr["v_th"], nr["reset"]) for nr in neurons}
    if len({(float(f"{k:.6g}"), v, r) for k, v, r in shared}) != 1:
        raise ValueError(f"layers differ in decay, threshold or reset {sorted(shared)}; our layers share them")
    k, v_th, reset = next(iter(shared))
    k = float(f"{k:.6g}")
    last = params[-1][0].shape[0]
    per_class, classes = 1, last
    if readout is not None:
        rn, rw, rb = readout
        classes = rw.shape[0]
        per_class = last // classes if classes and last % classes == 0 else 0
        group = np.kron(np.eye(classes), np.full((1, per_class), 1 / per_class)) if per_class else None
        if group is None or rw.shape != group.shape or not np.allclose(rw, group, atol=1e-6) or np.any(rb != 0):
            raise ValueError(f"node {rn}: a readout must be the voting group-mean matrix")
    tokens[-1] = "Voting"
    arch = "-".join(tokens)
    net = SpikingNet(arch, tuple(in_shape), classes, int(steps), neunorm=False, k=k,
                     v_th=v_th, neurons_per_class=per_class, reset=reset)
    weighted = [m.module if isinstance(m, TimeDistributed) else m for m in net.layers
                if isinstance(m.module if isinstance(m, TimeDistributed) else m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        for mod, (w, b) in zip(weighted, params, strict=True):
            if tuple(mod.weight.shape) != w.shape:
                raise ValueError(f"weight shape {w.shape} does not fit layer {tuple(mod.weight.shape)} of {arch}")
            mod.weight.copy_(torch.from_numpy(w.astype(_FLOAT)))
            mod.bias.copy_(torch.from_numpy(b.astype(_FLOAT)))
    net.config = _config(md, arch, in_shape, classes, int(steps), k=k, v_th=v_th, reset=reset,
                         per_class=per_class, name=name)
    return net.eval()


def _config(md: dict[str, Any], arch: str, in_shape: list[int], classes: int, steps: int, *, k: float,
            v_th: float, reset: str, per_class: int, name: str | None) -> dict[str, Any]:
    """The model config (``net.config``): the input block the exporter wrote (``input_config``,
    JSON), else N-MNIST-like event input of the graph's shape (binary frames, ``n_time_bins =
    time_steps``)."""
    c, h, w = in_shape
    names = md.get("classes") or [str(i) for i in range(classes)]
    if md.get("input_config"):
        inp = input_from_dict(json.loads(md["input_config"])).with_time_steps(steps).to_dict()
    elif md.get("input_kind") == "image":
        raise ValueError("an image model's NIR graph without its input_config (normalisation) cannot be imported")
    else:
        inp = {"kind": "events", "sensor_size": [w, h, c], "time_steps": steps, "layout": "[B, T, P, H, W]",
               "binning": {"method": "n_time_bins", "n_time_bins": steps, "mode": "binary", "downsample": 1,
                           "polarity_channels": c}}
    model = dict(in_shape=in_shape, num_classes=classes, time_steps=steps, neunorm=False, bn=False, k=k,
                 v_th=v_th, surrogate="rect", width=None, neurons_per_class=per_class, reset=reset, u0=0.0)
    return {"arch": arch, "dataset": md.get("dataset", "nir"), "model": model, "input": inp,
            "classes": [str(x) for x in names], "weights": None, "name": name or md.get("model_id", "nir"),
            "source": "nir"}
