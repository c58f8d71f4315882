r"""Export to NIR (Neuromorphic Intermediate Representation; ``pip install snnzoo[nir]``).

NIR describes a network in continuous-time primitives; each simulator picks its own time step
and discretisation when it imports the graph, so one file cannot run identically everywhere.
``target`` writes the parameters that make one importer's discretisation reproduce our
recursion

    zero reset:      u[t] = k·u[t−1]·(1 − o[t−1]) + I[t],     o[t] = (u[t] ≥ V_th)
    subtract reset:  u[t] = k·(u[t−1] − V_th·o[t−1]) + I[t],  u[−1] = u0,  I[t] = W·x[t] + b

Layers map node by node: Conv2d → ``nir.Conv2d``, AvgPool2d → ``nir.AvgPool2d`` (or
``nir.SumPool2d`` with ``1/(kh·kw)`` folded into the next layer's weights, exact in floating
point for power-of-two windows), Flatten → ``nir.Flatten`` (dims without the batch axis),
Linear → ``nir.Affine``; BatchNorm (eval) is folded into the preceding weights
(``w' = w·γ/√(σ²+ε)``, ``b' = (b−μ)·γ/√(σ²+ε) + β``). The bias is part of ``I[t]`` at every
step in every target. The voting readout is a ``nir.Linear`` (``nir.Affine`` with zero bias for
sinabs) with the group-mean matrix, so the graph outputs per-step class rates; the class score
is their mean over the T steps.

``nir.LIF`` is ``τ·dv/dt = (v_leak − v) + R·I``, spike when ``v > v_th``, then ``v ← v_reset``;
``nir.IF`` is ``dv/dt = R·I``. The targets (importer versions read: snnTorch 1.0, Norse 1.1,
sinabs 3.1, SpikingJelly 2.0):

generic (dt = 1 by default, any ``dt``): forward Euler, ``v[t] = (1 − dt/τ)·v[t−1] + (dt/τ)·R·I``:
    ``τ = dt/(1−k)``, ``R = 1/(1−k)``, ``v_leak = v_reset = 0``; IF (k = 1): ``nir.IF``, ``R = 1/dt``.
snntorch (dt = 1e-4, hard-coded by ``snntorch.import_nir``): ``Leaky(β = 1 − dt/τ)`` with input
    scale ``R·dt/τ`` (must be 1) and reset to zero in the same step: the generic mapping at
    dt = 1e-4, with the float32 ``τ`` whose float32 ``1 − dt/τ`` is nearest ``k``. Its ``nir.IF``
    becomes a Leaky with β = 0.9 and reset by subtraction, so IF models are refused.
norse (dt = 1e-3, ``norse.torch.from_nir``'s default; pass the same ``dt``): ``LIFBoxCell``,
    ``v ← v + dt/τ·(v_leak − v + I)``, ignoring ``R``; so ``τ = dt/(1−k)``, ``R = 1`` written
    and ``1/(1−k)`` folded into the preceding weights and bias. ``nir.AvgPool2d`` has no Norse
    module: SumPool2d. IF: ``IAFCell``, ``v ← v + I`` (``R = 1``).
spikingjelly (dt = 1e-4, ``import_from_nir``'s default; pass the same ``dt``): ``LIFNode(τ/dt,
    decay_input = (R == 1))`` with hard reset to ``v_reset``: the generic mapping (``R = τ/dt``
    gives ``decay_input=False``, ``v ← (1 − dt/τ)·v + I``). IF: ``nir.IF`` with ``R = 1/dt``.
sinabs (unit step, no ``dt``): ``LIFSqueeze(τ, norm_input=False)``, ``v ← e^{−1/τ}·v + I``
    (``R`` and ``v_reset`` ignored): ``τ = −1/ln k`` (``∞`` for IF, written as ``nir.LIF``, since
    its ``nir.IF`` clips the membrane at ``−V_th``). Its importer always builds ``MultiSpike``
    (``⌊v/V_th⌋`` spikes, fires on ``v ≥ V_th``) with ``MembraneSubtract``, which nothing in the
    file can change: exact for ``reset="subtract"`` only while ``u < 2·V_th``. Setting
    ``spike_fn = SingleSpike`` and ``reset_fn = MembraneReset()`` (zero) or ``MembraneSubtract()``
    on its LIF layers after import runs either reset exactly. SumPool2d, Affine readout, neuron
    parameters of shape [1] (its importer tests ``any(v_leak)``, which fails on [C, H, W]
    arrays; read the file with ``nir.read(path, type_check=False)``).

Firing: NIR (and snnTorch, Norse) fire on ``v > θ``, we on ``u ≥ V_th``; for those targets
(and ``generic``) the file's ``θ`` is the float32 just below ``V_th``, which makes the two the same
test for every float32 membrane (it matters: the published weights are fp16 and their sums hit
0.5 exactly). SpikingJelly and sinabs fire on ``≥`` and get ``V_th`` itself. Not exact: float32
parameters round differently from our ``k·u`` (``1 − dt/τ`` in float32 is 0.19999999, not 0.2;
Norse's folded ``R``), which can move a membrane within an ulp of the threshold across it;
``tests/test_nir_targets.py`` measures this on real recordings. Refused everywhere:
NeuNorm (no NIR primitive), ``u0 ≠ 0`` (NIR has no initial state), and ``reset="subtract"``
outside sinabs (``nir.LIF`` resets to a value). snnTorch's and Norse's importers apply
``nir.Flatten``'s batch-free dims to the batched tensor: step them one recording at a time
(input ``[C, H, W]`` or ``[1, C, H, W]``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..zoo.layers import TimeDistributed
from ..zoo.lif import LIF
from ..zoo.network import SpikingNet
from ..zoo.neunorm import NeuNorm
from .onnx import prepare


@dataclass(frozen=True)
class Target:
    """How one importer discretises NIR (see the module docstring)."""

    dt: float                   # default time step
    fixed_dt: bool = False      # the importer hard-codes dt (or has none)
    exact_exp: bool = False     # decay e^{-dt/τ} instead of forward Euler 1 − dt/τ
    fold_r: bool = False        # R ignored: fold it into the preceding weights, write R = 1
    sum_pool: bool = False      # no AvgPool2d: SumPool2d, 1/(kh·kw) folded into the next weights
    affine_readout: bool = False
    scalar_params: bool = False  # neuron parameters of shape [1] (the importer cannot take [C, H, W])
    resets: tuple[str, ...] = ("zero",)  # the resets the file can carry to this importer
    if_node: str = "if_dt"      # IF (k = 1) as: "if_dt" nir.IF R=1/dt, "if_1" nir.IF R=1, "lif_inf", "" refused
    importer: str = ""
    f32_decay: bool = False     # the importer computes 1 − dt/τ in float32: pick the τ that rounds nearest k
    fires_gt: bool = True       # spikes on v > v_th (NIR's definition): write the float32 below V_th


TARGETS: dict[str, Target] = {
    "generic": Target(dt=1.0, importer="any forward-Euler simulator"),
    "snntorch": Target(dt=1e-4, fixed_dt=True, if_node="", f32_decay=True, importer="snntorch.import_nir.import_from_nir(graph)"),
    "norse": Target(dt=1e-3, fold_r=True, sum_pool=True, if_node="if_1",
                    importer="norse.torch.from_nir(graph, dt=DT)"),
    "spikingjelly": Target(dt=1e-4, fires_gt=False, importer="spikingjelly.activation_based.nir_exchange.import_from_nir(graph, dt=DT)"),
    "sinabs": Target(dt=1.0, fixed_dt=True, exact_exp=True, sum_pool=True, affine_readout=True,
                     scalar_params=True, resets=("zero", "subtract"), if_node="lif_inf", fires_gt=False,
                     importer="sinabs.from_nir(graph, batch_size=B) on [B·T, ...] input"),
}


def _nir():
    try:
        import nir
    except ImportError:
        raise ImportError("NIR export needs the `nir` package: pip install 'snnzoo[nir]'") from None
    return nir


def _fold(block: nn.Module) -> tuple[nn.Module, np.ndarray, np.ndarray]:
    """``(conv or linear, weight, bias)`` in float64 with an eval-mode BatchNorm folded in."""
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
    return layer, w, b


def _check_neuron(lif: LIF, target: str, spec: Target) -> None:
    reset, u0 = getattr(lif, "reset", "zero"), getattr(lif, "u0", 0.0)
    if u0 != 0.0:
        raise ValueError(f"NIR has no initial membrane state; u0 = {u0} cannot be exported")
    if reset not in spec.resets:
        raise ValueError(f"nir.LIF resets to a value; reset={reset!r} cannot be exported for {target} "
                         "(--target sinabs, whose spike and reset functions are chosen after import, can)")
    if lif.k >= 1.0 and not spec.if_node:
        raise ValueError(f"the {target} importer maps nir.IF to a leaky neuron (beta 0.9, subtract reset); "
                         "k = 1 (IF) cannot be exported for it (choose another --target)")
    if lif.k <= 0.0 and spec.exact_exp:
        raise ValueError(f"k = 0 has no finite time constant for {target} (tau = -1/ln k)")


def _neuron(nir, lif: LIF, shape: list[int], dt: float, spec: Target):
    full = lambda v: np.full([1] if spec.scalar_params else shape, v, np.float32)  # noqa: E731
    k, meta = lif.k, {"k": lif.k, "v_th": lif.v_th, "dt": dt, "reset": getattr(lif, "reset", "zero")}
    v_th = threshold_for(lif.v_th, spec.fires_gt)
    if k >= 1.0:
        if spec.if_node == "lif_inf":
            return nir.LIF(tau=full(np.inf), r=full(1.0), v_leak=full(0.0), v_threshold=full(v_th),
                           v_reset=full(0.0), metadata=meta)
        r = 1.0 / dt if spec.if_node == "if_dt" else 1.0
        return nir.IF(r=full(r), v_threshold=full(v_th), v_reset=full(0.0), metadata=meta)
    if spec.exact_exp:
        tau, r = -dt / np.log(k), 1.0
    else:
        tau, r = dt / (1 - k), (1.0 if spec.fold_r else 1 / (1 - k))
    if spec.f32_decay:
        tau = _nearest_decay_tau(k, dt)
    return nir.LIF(tau=full(tau), r=full(r), v_leak=full(0.0), v_threshold=full(v_th),
                   v_reset=full(0.0), metadata=meta)


def threshold_for(v_th: float, fires_gt: bool) -> np.float32:
    """The threshold to write: for a ``v > θ`` simulator the float32 just below ``V_th``, so that
    ``v > θ ⇔ v ≥ V_th`` for every float32 ``v`` (our ``≥``, exactly)."""
    t = np.float32(v_th)
    return np.nextafter(t, np.float32(-np.inf)) if fires_gt else t


def _nearest_decay_tau(k: float, dt: float) -> np.float32:
    """The float32 ``τ`` near ``dt/(1−k)`` whose float32 ``1 − dt/τ`` is closest to float32 ``k``
    (``1 − dt/τ`` has steps of 2⁻²⁴ near 0.8 while ``k`` has finer ones: it cannot always hit it)."""
    best, near = np.float32(dt / (1 - k)), []
    for direction in (np.float32(0), np.float32(np.inf)):
        t = best
        for _ in range(8):
            near.append(t)
            t = np.nextafter(t, direction)
    err = [abs(float(np.float32(1) - np.float32(dt) / t) - float(np.float32(k))) for t in near]
    return near[int(np.argmin(err))]


def to_nir(model: SpikingNet, time_steps: int | None = None, dt: float | None = None,
           target: str = "generic"):
    """The ``nir.NIRGraph`` of ``model`` for ``target`` (one time step; see the module docstring).
    ``dt=None`` takes the target's default."""
    nir = _nir()
    if target not in TARGETS:
        raise ValueError(f"unknown NIR target {target!r}; choose one of {', '.join(TARGETS)}")
    spec = TARGETS[target]
    if dt is None:
        dt = spec.dt
    elif not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    elif spec.fixed_dt and dt != spec.dt:
        raise ValueError(f"the {target} importer fixes its time step ({spec.dt:g}); --dt cannot change it")
    net = prepare(model, time_steps)
    if any(isinstance(m, NeuNorm) for m in net.modules()):
        raise ValueError("NIR has no NeuNorm node; export with neunorm=False")
    layers = list(net.layers)
    for m in layers:
        if isinstance(m, LIF):
            _check_neuron(m, target, spec)
    shape = list(net.in_shape)
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(shape)})}
    counts: dict[str, int] = {}
    pending = 1.0  # a SumPool2d's 1/(kh·kw), owed to the next weighted layer

    def add(kind: str, node) -> None:
        i = counts.get(kind, 0)
        counts[kind] = i + 1
        nodes[f"{kind}{i}"] = node

    for i, layer in enumerate(layers):
        inner = layer.module if isinstance(layer, TimeDistributed) else layer
        head = inner[0] if isinstance(inner, nn.Sequential) else inner
        if isinstance(layer, LIF):
            add("lif", _neuron(nir, layer, shape, dt, spec))
        elif isinstance(head, (nn.Conv2d, nn.Linear)):
            mod, w, b = _fold(inner)
            w = w * pending
            pending = 1.0
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if spec.fold_r and isinstance(nxt, LIF) and nxt.k < 1.0:
                w, b = w / (1 - nxt.k), b / (1 - nxt.k)
            w, b = w.astype(np.float32), b.astype(np.float32)
            if isinstance(head, nn.Conv2d):
                add("conv", nir.Conv2d(input_shape=tuple(shape[1:]), weight=w, stride=mod.stride,
                                       padding=mod.padding, dilation=mod.dilation, groups=mod.groups, bias=b))
                shape = [w.shape[0], *shape[1:]]
            else:
                add("fc", nir.Affine(weight=w, bias=b))
                shape = [w.shape[0]]
        elif isinstance(head, nn.AvgPool2d):
            k = head.kernel_size
            window = dict(kernel_size=np.array([k, k]), stride=np.array([k, k]), padding=np.array([0, 0]))
            if spec.sum_pool:
                add("pool", nir.SumPool2d(**window))
                pending *= 1.0 / (k * k)
            else:
                add("pool", nir.AvgPool2d(**window))
            shape = [shape[0], shape[1] // k, shape[2] // k]
        elif isinstance(head, nn.Flatten):
            add("flatten", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1))
            shape = [int(np.prod(shape))]
        else:
            raise ValueError(f"NIR export does not support {type(head).__name__}")
    per_class = net.voting.neurons_per_class
    group = np.kron(np.eye(net.num_classes), np.full((1, per_class), 1 / per_class)).astype(np.float32)
    nodes["readout"] = (nir.Affine(weight=group, bias=np.zeros(net.num_classes, np.float32))
                        if spec.affine_readout else nir.Linear(weight=group))
    nodes["output"] = nir.Output(output_type={"output": np.array([net.num_classes])})
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])),
                        metadata=_graph_metadata(net.config, dt, target), type_check=not spec.scalar_params)


def _graph_metadata(config: dict[str, Any], dt: float, target: str) -> dict[str, Any]:
    m = config["model"]
    return {
        "model_id": config.get("name", "model"), "arch": config["arch"], "classes": list(config["classes"]),
        "time_steps": int(m["time_steps"]), "dt": dt, "target": target, "importer": TARGETS[target].importer,
        "input_kind": config["input"]["kind"], "input_config": json.dumps(config["input"]),
        "neuron": (f"discrete LIF u[t]=k*u[t-1]*(1-o[t-1])+I[t] (reset {m.get('reset', 'zero')}), o=(u>=v_th), "
                   f"k={m['k']}, v_th={m['v_th']}; parameters chosen for the {target} importer "
                   "(snnzoo.export.nir docstring)"),
        "caveats": ("we fire on u >= V_th: v_threshold is the float32 below V_th for v > v_th simulators; "
                    "float32 parameters may flip a spike within an ulp of the threshold; exact-exponential "
                    "integration of the generic file decays by exp(-(1-k)) not k"),
        "readout": "output = per-step class rates (voting-group means); class score = mean over time_steps",
    }


def export_nir(model: SpikingNet, path: str | Path, time_steps: int | None = None, dt: float | None = None,
               target: str = "generic") -> Path:
    """Write ``model``'s NIR graph for ``target`` to ``path`` (HDF5, ``nir.write``) and return it."""
    path = Path(path)
    graph = to_nir(model, time_steps, dt, target)
    path.parent.mkdir(parents=True, exist_ok=True)
    _nir().write(str(path), graph)
    return path
