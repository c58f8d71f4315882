r"""Check an exported file against the PyTorch model it came from.

1. ``onnx.checker.check_model(full_check=True)`` (with shape inference).
2. **Teacher-forced**: every spike tensor of the graph, ``o_l[t] = (u_l[t] >= V_th)`` for spiking
   layer ``l`` and step ``t``, is cut from its consumers, which read PyTorch's spikes instead (a
   graph input per cut; a streaming file also gets PyTorch's state before each step, from
   :class:`StreamingNet`); ONNX Runtime then computes each layer and step from exactly PyTorch's
   upstream and past spikes, and its ``o_l[t]`` are compared with PyTorch's. A flip can
   then only come from that layer's own float sums landing on the other side of ``V_th``, never
   from a flip upstream, so each layer is held to ``flips_l ≤ max_forced_flips +
   max_forced_flip_rate · neuron-steps_l``, and the forced scores must equal PyTorch's as voting
   spike counts. Measured: 2 flips in 40 M neuron-steps (5e-8) for the random 45 M-parameter
   ``wu2019_cifar10`` at T=8; a 1 % error in one weight tensor of ``nmnist_compact`` gives
   12–1,864 flips, all in that layer.
3. **Free-running**: ONNX Runtime (CPU) and PyTorch (eval) class scores on the same inputs; a
   streaming file is run T steps with its state fed back. Scores are compared as voting spike
   counts, ``votes_c = score_c · T · n`` (integers, n = neurons per class). Here a rounding flip
   cascades to downstream layers and later steps; in a deep random network with one-vote top-1
   margins that moves whole samples (the same ``wu2019_cifar10`` on an AVX2 CPU: those 2 flips
   became 21 voting-spike flips of 6,400 and one changed top-1). So where step 2 ran, free-running
   must keep the flip rate ``Σ|Δvotes| / (B·T·classes·n) ≤ max_flip_rate`` (a net count per voting
   group, a lower bound on flipped output spikes); where it cannot (graphs without spike ops) it
   must also keep ``|Δvotes_c| ≤ max_vote_diff`` per sample and class and the same
   top-1 wherever PyTorch's top vote count is unique.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import onnx
import onnxruntime as ort
import torch

from ..runtime.binning import bin_from_spec
from ..runtime.onnx_metadata import decode_metadata
from ..runtime.specs import input_from_dict
from ..zoo.lif import LIF
from ..zoo.network import SpikingNet
from .onnx import prepare
from .streaming import StreamingNet


def verify_onnx(path: str | Path, model: SpikingNet, inputs: np.ndarray | torch.Tensor, *,
                batch_size: int = 32, max_vote_diff: int = 2, max_flip_rate: float = 5e-3,
                max_forced_flips: int = 2, max_forced_flip_rate: float = 1e-6) -> dict[str, Any]:
    """Verify ``path`` against ``model`` on ``inputs`` (the unrolled graph's input layout:
    ``[B, T, P, H, W]`` frames or ``[B, C, H, W]`` images); returns a report with ``passed``
    and ``teacher_forced`` (per spiking layer: neuron-steps, flips, ``ok``)."""
    path = Path(path)
    proto = onnx.load(str(path))  # a single self-contained file (export_onnx), < 2 GB
    onnx.checker.check_model(proto, full_check=True)
    meta = decode_metadata({p.key: p.value for p in proto.metadata_props})
    steps, per_class = meta["time_steps"], meta["output"]["neurons_per_class"]
    scale = steps * per_class
    net = prepare(model, steps)
    x = np.ascontiguousarray(inputs.numpy() if isinstance(inputs, torch.Tensor) else inputs, np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    forced = _TeacherForcing.build(proto, net, meta)  # cuts ``proto``'s graph in place

    ref, got = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            with forced.recording() if forced else nullcontext():
                ref.append(net(torch.from_numpy(xb)).numpy())
            got.append(_run_streaming(session, meta, xb, net.encoding) if meta["streaming"]
                       else session.run(["scores"], {meta["input_name"]: xb})[0])
            if forced:
                forced.compare(xb, ref[-1], scale)
    ref, got = np.concatenate(ref), np.concatenate(got)

    ref_votes, got_votes = np.rint(ref * scale).astype(np.int64), np.rint(got * scale).astype(np.int64)
    dv = np.abs(ref_votes - got_votes)
    top = np.sort(ref_votes, axis=1)
    unique = top[:, -1] > top[:, -2]
    agree = ref_votes.argmax(1) == got_votes.argmax(1)
    flips = int(dv.sum())
    report = {
        "file": str(path), "checker": "ok", "samples": len(x), "time_steps": steps,
        "streaming": meta["streaming"],
        "max_abs_diff": float(np.abs(ref - got).max()), "max_vote_diff": int(dv.max()),
        "samples_differing": int((dv.sum(1) > 0).sum()),
        "vote_flips": flips, "voting_spikes": int(dv.size * scale),
        "flip_rate": flips / (dv.size * scale),
        "top1_unique": int(unique.sum()), "top1_agree_unique": int((agree & unique).sum()),
        "top1_agree_all": int(agree.sum()),
        "tolerance": {"max_vote_diff": max_vote_diff, "max_flip_rate": max_flip_rate,
                      "max_forced_flips": max_forced_flips, "max_forced_flip_rate": max_forced_flip_rate},
    }
    if forced:
        report["teacher_forced"] = tf = forced.summary(max_forced_flips, max_forced_flip_rate)
        report["passed"] = bool(all(layer["ok"] for layer in tf["layers"]) and tf["max_vote_diff"] == 0
                                and report["flip_rate"] <= max_flip_rate)
    else:
        report["passed"] = bool(report["top1_agree_unique"] == report["top1_unique"]
                                and report["max_vote_diff"] <= max_vote_diff and report["flip_rate"] <= max_flip_rate)
    return report


def spike_ops(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The graph's spike ops ``Cast(GreaterOrEqual(u, V_th))`` in graph order: topological, and so
    layer by layer and step by step (step t's reset reads step t−1's spikes; a layer's stateless
    ops run on all T steps of the spiking layer before it)."""
    made_by = {out: node.op_type for node in model.graph.node for out in node.output}
    return [n for n in model.graph.node if n.op_type == "Cast" and made_by.get(n.input[0]) == "GreaterOrEqual"]


class _TeacherForcing:
    """Step 2 of the module docstring: the graph with its spike tensors cut (:meth:`build`),
    PyTorch's spikes recorded by forward hooks, and the flip counts per spiking layer."""

    def __init__(self, session: ort.InferenceSession, names: list[str], layers: list[tuple[str, LIF]],
                 net: SpikingNet, meta: dict[str, Any]) -> None:
        self.session, self.names, self.layers, self.steps = session, names, layers, net.time_steps
        self.net, self.meta = net, meta
        self.input = session.get_inputs()[0].name
        self.recorded: list[torch.Tensor] = []
        self.flips = np.zeros(len(layers), np.int64)
        self.sizes = np.zeros(len(layers), np.int64)
        self.max_vote_diff = 0

    @classmethod
    def build(cls, model: onnx.ModelProto, net: SpikingNet, meta: dict[str, Any]) -> _TeacherForcing | None:
        """Cut ``model``'s spike ops (in place); None where they do not pair one to one with the
        model's LIF layers (× T, unrolled), e.g. an ANN whose QCFS activations have none."""
        layers = [(name, m) for name, m in net.lif_layers() if isinstance(m, LIF)]
        casts = spike_ops(model)
        if not layers or len(casts) != len(layers) * (1 if meta["streaming"] else net.time_steps):
            return None
        names = [c.output[0] for c in casts]
        cut = {s: f"forced_{i}" for i, s in enumerate(names)}
        for node in model.graph.node:
            if node.op_type != "Cast" or node.output[0] not in cut:
                node.input[:] = [cut.get(name, name) for name in node.input]
        for c, s in zip(casts, names):
            elem = next(a.i for a in c.attribute if a.name == "to")
            model.graph.input.append(onnx.helper.make_tensor_value_info(cut[s], elem, None))
            model.graph.output.append(onnx.helper.make_tensor_value_info(s, elem, None))
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return cls(session, names, layers, net, meta)

    @contextmanager
    def recording(self) -> Iterator[None]:
        """Record every LIF layer's output spikes ``[T, B, ...]`` of one unrolled forward, in call
        order (a streaming file's spikes come from :class:`StreamingNet` instead)."""
        self.recorded.clear()
        hooks = [] if self.meta["streaming"] else \
            [m.register_forward_hook(lambda _m, _i, out: self.recorded.append(out)) for _, m in self.layers]
        try:
            yield
        finally:
            for h in hooks:
                h.remove()

    def compare(self, xb: np.ndarray, ref_scores: np.ndarray, scale: int) -> None:
        """Run the cut graph on ``xb`` with PyTorch's spikes; count flips per layer and compare its
        votes (``scores · scale``) with PyTorch's ``ref_scores`` of the same forward."""
        if self.meta["streaming"]:
            self._compare_streaming(xb, scale)
            return
        if len(self.recorded) != len(self.layers):
            raise RuntimeError(f"recorded {len(self.recorded)} spiking layers, expected {len(self.layers)}")
        want = [o[t].numpy() for o in self.recorded for t in range(self.steps)]
        feeds = {f"forced_{i}": w for i, w in enumerate(want)}
        scores, *spikes = self.session.run(["scores", *self.names], {self.input: xb, **feeds})
        self._tally(want, spikes, self.steps)
        self._votes(scores, ref_scores, scale)

    def _compare_streaming(self, xb: np.ndarray, scale: int) -> None:
        """Step by step, the cut graph gets PyTorch's state before the step and its spikes of the
        step (:class:`StreamingNet`); the votes are compared after the last step."""
        stepper = StreamingNet(self.net).eval()
        state = stepper.initial_state(len(xb))
        spiking = [i for i, name in enumerate(stepper.state_names) if name.endswith("_o")]
        inputs = [s["input"] for s in self.meta["state"]]
        with torch.no_grad():
            for t in range(self.steps):
                frame = np.ascontiguousarray(xb if self.net.encoding else xb[:, t])
                scores_ref, *new = stepper(torch.from_numpy(frame), state)
                want = [new[i].numpy() for i in spiking]
                feeds = {self.input: frame, **{n: v.numpy() for n, v in zip(inputs, state)},
                         **{f"forced_{k}": w for k, w in enumerate(want)}}
                scores, *spikes = self.session.run(["scores", *self.names], feeds)
                self._tally(want, spikes, 1)
                state = new
        self._votes(scores, scores_ref.numpy(), scale)

    def _tally(self, want: list[np.ndarray], got: list[np.ndarray], per_layer: int) -> None:
        """Count flips of spike op ``k`` (layer ``k // per_layer``) between PyTorch and ORT."""
        for k, (w, g) in enumerate(zip(want, got)):
            if g.shape != w.shape:
                raise RuntimeError(f"spike op {self.names[k]}: shape {g.shape}, PyTorch's {w.shape}")
            self.flips[k // per_layer] += int((g != w).sum())
            self.sizes[k // per_layer] += w.size

    def _votes(self, scores: np.ndarray, ref_scores: np.ndarray, scale: int) -> None:
        diff = np.abs(np.rint(scores * scale) - np.rint(ref_scores * scale))
        self.max_vote_diff = max(self.max_vote_diff, int(diff.max()))

    def summary(self, max_flips: int, max_rate: float) -> dict[str, Any]:
        """Per layer: neuron-steps, flips, and ``ok``: flips ≤ ``max_flips + max_rate · neuron-steps``."""
        return {"layers": [{"name": name, "neuron_steps": int(n), "flips": int(f), "ok": bool(f <= max_flips + max_rate * n)}
                           for (name, _), n, f in zip(self.layers, self.sizes, self.flips)],
                "neuron_steps": int(self.sizes.sum()), "flips": int(self.flips.sum()),
                "flip_rate": float(self.flips.sum() / max(1, self.sizes.sum())), "max_vote_diff": self.max_vote_diff}


def _run_streaming(session: ort.InferenceSession, meta: dict, x: np.ndarray, encoding: bool) -> np.ndarray:
    state = {s["input"]: np.zeros((len(x), *s["shape"]), np.float32) for s in meta["state"]}
    names = [o.name for o in session.get_outputs()]
    for t in range(meta["time_steps"]):
        frame = x if encoding else x[:, t]
        out = dict(zip(names, session.run(names, {meta["input_name"]: np.ascontiguousarray(frame), **state})))
        state = {s["input"]: out[s["output"]] for s in meta["state"]}
    return out["scores"]


def event_inputs(recordings: list[tuple[np.ndarray, tuple[int, int, int]]], config: dict) -> np.ndarray:
    """Frames ``[B, T, P, H, W]`` for ``(events, sensor_size)`` pairs, binned with the model's spec."""
    inp = input_from_dict(config["input"])
    if inp.kind != "events":
        raise ValueError(f"{config.get('name', 'model')} takes images, not events")
    want = inp.sensor_size
    frames = []
    for events, sensor in recordings:
        if tuple(sensor) != want:
            raise ValueError(f"sensor size {tuple(sensor)} does not match the model's {want}")
        frames.append(bin_from_spec(events, want, inp.binning))
    return np.stack(frames)
