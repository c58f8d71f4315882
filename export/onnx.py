"""Export a :class:`SpikingNet` to ONNX with torch's dynamo exporter.

Unrolled (default): the eval-mode forward is traced with a fixed T, so the LIF recursion
``u[t] = k·u[t−1]·(1−o[t−1]) + I[t]``, ``o[t] = (u[t] >= V_th)`` becomes T copies of plain ops
(Mul, Add, GreaterOrEqual, Cast); the stateless layers run once on the folded ``[T·B]`` batch.
Input ``frames`` ``[B, T, P, H, W]`` (or ``image`` ``[B, C, H, W]`` for encoding-layer models),
output ``scores`` ``[B, classes]``; the batch axis is dynamic. Streaming: one step with explicit
state (see :mod:`snnzoo.export.streaming`). Either way the file is self-contained (weights
inside) and self-describing (see :mod:`snnzoo.export.metadata`).

The TorchScript exporter is not used: the dynamo exporter handles every zoo model.
"""
from __future__ import annotations

import copy
import logging
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import onnx
import torch
from torch import nn

from ..runtime.onnx_metadata import initializers_sha256
from ..runtime.specs import ModelConfig
from ..zoo.network import SpikingNet
from .metadata import build_metadata
from .streaming import StreamingNet


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's warnings (e.g. "torchvision is not installed") for one export."""
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)


def prepare(model: SpikingNet, time_steps: int | None = None) -> SpikingNet:
    """An eval-mode copy of ``model`` running ``time_steps`` steps (config updated to match)."""
    if not isinstance(model, SpikingNet):
        raise TypeError(f"expected a SpikingNet, got {type(model).__name__}")
    net = copy.deepcopy(model).eval()
    for m in net.modules():  # no rate recording hooks in the traced graph
        if hasattr(m, "record_rate"):
            m.record_rate, m.rate = False, None
    cfg = copy.deepcopy(getattr(model, "config", None))
    if cfg is None:
        raise ValueError("model has no .config; build it with snnzoo.create_model")
    if time_steps is not None:
        if time_steps < 1:
            raise ValueError(f"time_steps must be >= 1, got {time_steps}")
        net.time_steps = time_steps
        cfg = ModelConfig.from_dict(cfg).with_time_steps(time_steps).to_dict()
    net.config = cfg
    return net


def input_name(net: SpikingNet, streaming: bool = False) -> str:
    if net.encoding:
        return "image"
    return "frame" if streaming else "frames"


def example_input(net: SpikingNet, batch: int = 2, streaming: bool = False) -> torch.Tensor:
    """A random input of the right shape: N(0, 1) images; event frames with about the density of
    real recordings — Bernoulli(0.1) for ``binary`` binning, Poisson(0.25) counts for ``count``."""
    g = torch.Generator().manual_seed(0)
    if net.encoding:
        return torch.randn(batch, *net.in_shape, generator=g)
    shape = (batch, *net.in_shape) if streaming else (batch, net.time_steps, *net.in_shape)
    binning = getattr(net, "config", {}).get("input", {}).get("binning", {})
    if binning.get("mode") == "count":
        return torch.poisson(torch.full(shape, 0.25), generator=g)
    return (torch.rand(shape, generator=g) < 0.1).float()


def export_onnx(model: SpikingNet, path: str | Path, time_steps: int | None = None,
                opset: int | None = None, streaming: bool = False,
                weights: dict[str, Any] | None = None) -> Path:
    """Export ``model`` to the single file ``path`` and return it.

    ``time_steps`` overrides the model's T; ``opset`` the ONNX opset (the exporter's default
    otherwise); ``streaming`` exports one step with explicit state instead of the unrolled
    graph; ``weights`` records the weights' provenance in the metadata (e.g.
    ``{"source": "checkpoint", "sha256": ...}``).
    """
    path = Path(path)
    net = prepare(model, time_steps)
    name = input_name(net, streaming)
    batch = torch.export.Dim("batch", min=1)
    x = example_input(net, streaming=streaming)
    state_meta = None
    if streaming:
        module: nn.Module = StreamingNet(net).eval()
        state = module.initial_state(x.shape[0])
        args: tuple = (x, state)
        in_names = [name, *module.state_names]
        out_names = ["scores", *(f"{s}_next" for s in module.state_names)]
        dyn: tuple = ({0: batch}, [{0: batch} for _ in state])
        state_meta = [{"input": s, "output": f"{s}_next", "shape": shape, "meaning": meaning}
                      for s, shape, meaning in zip(module.state_names, module.state_shapes,
                                                   module.state_meanings)]
    else:
        module, args, in_names, out_names, dyn = net, (x,), [name], ["scores"], ({0: batch},)

    with _quiet(), torch.no_grad():
        program = torch.onnx.export(module, args, dynamo=True, input_names=in_names,
                                    output_names=out_names, dynamic_shapes=dyn,
                                    opset_version=opset, verbose=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    program.save(path, external_data=False)

    proto = onnx.load(str(path))
    props = build_metadata(net.config, input_name=name, input_shape=list(x.shape[1:]),
                           weights_sha256=initializers_sha256(proto), weights=weights,
                           exporter=f"torch.onnx (dynamo) {torch.__version__}", state=state_meta)
    del proto.metadata_props[:]
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name, proto.producer_version = "snnzoo", props["snnzoo_version"]
    proto.doc_string = (f"{props['model_id']} ({props['arch']}), T={props['time_steps']}"
                        f"{', streaming' if streaming else ''}; exported by snnzoo")
    onnx.save(proto, str(path))
    return path
