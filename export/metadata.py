"""What an exported ONNX file says about itself (``metadata_props``), so that a service can
bin events, run the graph and label its output with numpy + onnxruntime alone.

All values are strings; structured ones are JSON. ``snnzoo.runtime.onnx_metadata.read_metadata``
(torch-free) decodes them.

==================  ======  ============================================================================
key                 type    meaning
==================  ======  ============================================================================
schema              str     ``snnzoo.onnx/1``: the layout of these keys
model_id            str     registry name, e.g. ``nmnist_compact``
snnzoo_version      str     version of snnzoo that exported the file
arch                str     the paper's layer notation, e.g. ``32C3-AP2-64C3-AP2-256FC-Voting``
dataset             str     training dataset id
classes             JSON    class labels, index = output column
num_classes         int     ``len(classes)``
time_steps          int     T: time steps the graph runs (unrolled), or the voting window (streaming)
input_name          str     ``frames`` ([B, T, P, H, W] binned events), ``image`` ([B, C, H, W]);
                            streaming graphs: ``frame`` ([B, P, H, W], one step) or ``image``
input_kind          str     ``events`` or ``image``
input_layout        str     e.g. ``[B, T, P, H, W]``
input_shape         JSON    the input's shape without the batch axis
sensor_size         JSON    events: ``[W, H, P]`` of the sensor before downsampling; image: null
binning             JSON    events: ``{method, n_time_bins | time_window, mode, downsample,
                            polarity_channels}`` with the semantics of ``snnzoo/runtime/binning.py``
                            (``mode``: ``count`` or ``binary`` = counts clamped to 1); image: null
normalization       JSON    image: ``{scale, mean, std}``, input = (pixel · scale − mean) / std per
                            channel; events: null (the binned frames are the input as they are)
output              JSON    ``{name: "scores", shape, meaning, neurons_per_class}``: class score =
                            mean firing rate of the class's voting group, in [0, 1]
neuron              JSON    LIF constants ``{model, k, v_th, reset, u0, equations, surrogate, width}`` and the
                            NeuNorm/BN switches and constants (``neunorm_k2``, ``neunorm_v``)
weights_sha256      str     sha256 of the graph's initializers, as ``initializers_sha256`` computes
weights             JSON    provenance of the weights: ``{source: registry|checkpoint|random-init|
                            unspecified, ...}`` with the source file's sha256 where known
streaming           bool    ``true`` for the one-step graph with explicit state
state               JSON    streaming only: ``[{input, output, shape, meaning}]``; every state
                            input starts at zeros of ``[B, *shape]`` and takes the matching output
                            of the previous step
exporter            str     e.g. ``torch.onnx (dynamo) 2.13.0``
license             str     licence of the weights/model
citation            str     BibTeX of the method
==================  ======  ============================================================================
"""
from __future__ import annotations

import json
from typing import Any

from .._version import __version__
from ..runtime.onnx_metadata import BOOL_KEYS, JSON_KEYS

SCHEMA = "snnzoo.onnx/1"


def build_metadata(config: dict[str, Any], *, input_name: str, input_shape: list[int],
                   weights_sha256: str, weights: dict[str, Any] | None, exporter: str,
                   state: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """The ``metadata_props`` for a model's resolved ``config`` (``net.config``)."""
    m, inp = config["model"], config["input"]
    events = inp["kind"] == "events"
    steps = int(m["time_steps"])
    norm = None if events else {"scale": inp["scale"], "mean": inp["mean"], "std": inp["std"]}
    layout = "[B, P, H, W]" if events and state is not None else inp["layout"]
    reset, u0 = m.get("reset", "zero"), float(m.get("u0", 0.0))
    update = "k*u[t-1]*(1-o[t-1])" if reset == "zero" else "k*(u[t-1] - v_th*o[t-1])"
    neuron = {
        "model": "IF" if m["k"] == 1.0 else "LIF", "k": m["k"], "v_th": m["v_th"], "reset": reset, "u0": u0,
        "equations": f"u[t] = {update} + I[t]; o[t] = (u[t] >= v_th); u[-1] = u0, o[-1] = 0",
        "surrogate": m["surrogate"], "width": m["width"], "bn": m["bn"], "neunorm": m["neunorm"],
    }
    if m["neunorm"]:
        neuron["neunorm_k2"] = m["neunorm_k2"]
        neuron["neunorm_v"] = 1.0 - m["neunorm_k2"]
        neuron["neunorm_equations"] = "a[t] = k2*a[t-1] + v*mean_f(o_f[t]); s_f[t] = o_f[t] - e_f*a[t]"
    classes = list(config["classes"])
    output = {"name": "scores", "shape": ["batch", len(classes)], "neurons_per_class": m["neurons_per_class"],
              "meaning": "class score = mean firing rate of the class's voting group over T steps, in [0, 1]"}
    meta: dict[str, Any] = {
        "schema": SCHEMA, "model_id": config.get("name", "unknown"), "snnzoo_version": __version__,
        "arch": config["arch"], "dataset": config.get("dataset", "unknown"),
        "classes": classes, "num_classes": len(classes), "time_steps": steps,
        "input_name": input_name, "input_kind": inp["kind"], "input_layout": layout,
        "input_shape": input_shape,
        "sensor_size": inp["sensor_size"] if events else None,
        "binning": inp["binning"] if events else None,
        "normalization": norm, "output": output, "neuron": neuron,
        "weights_sha256": weights_sha256, "weights": weights or {"source": "unspecified"},
        "streaming": state is not None, "exporter": exporter,
        "license": config.get("license", "unknown"), "citation": config.get("citation", ""),
    }
    if state is not None:
        meta["state"] = state
    return {k: _encode(k, v) for k, v in meta.items()}


def _encode(key: str, value: Any) -> str:
    if key in JSON_KEYS:
        return json.dumps(value)
    if key in BOOL_KEYS:
        return "true" if value else "false"
    return str(value)
