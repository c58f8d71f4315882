r"""Check an exported file against the PyTorch model it came from.

1. ``onnx.checker.check_model(full_check=True)`` (with shape inference).
2. ONNX Runtime (CPU) and PyTorch (eval) class scores on the same inputs; a streaming file is
   run T steps with its state fed back.
3. Scores are compared as voting spike counts, ``votes_c = score_c · T · n`` (integers, n =
   neurons per class). ORT and PyTorch may order float sums differently, so a membrane that lands
   on the threshold can fire in one and not the other: rare single-spike flips. We allow
   ``|Δvotes_c| ≤ max_vote_diff`` per sample and class and a flip rate
   ``Σ|Δvotes| / (B·T·classes·n) ≤ max_flip_rate`` (a net count per voting group, so it is a
   lower bound on flipped output spikes), and require the same top-1 class wherever PyTorch's
   top vote count is unique (scores equal as counts may still differ in the last float bit).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from ..runtime.binning import bin_from_spec
from ..runtime.onnx_metadata import read_metadata
from ..runtime.specs import input_from_dict
from ..zoo.network import SpikingNet
from .onnx import prepare


def verify_onnx(path: str | Path, model: SpikingNet, inputs: np.ndarray | torch.Tensor, *,
                batch_size: int = 32, max_vote_diff: int = 2, max_flip_rate: float = 5e-3) -> dict[str, Any]:
    """Verify ``path`` against ``model`` on ``inputs`` (the unrolled graph's input layout:
    ``[B, T, P, H, W]`` frames or ``[B, C, H, W]`` images); returns a report with ``passed``."""
    path = Path(path)
    onnx.checker.check_model(str(path), full_check=True)
    meta = read_metadata(path)
    steps, per_class = meta["time_steps"], meta["output"]["neurons_per_class"]
    net = prepare(model, steps)
    x = np.ascontiguousarray(inputs.numpy() if isinstance(inputs, torch.Tensor) else inputs, np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    ref, got = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            ref.append(net(torch.from_numpy(xb)).numpy())
            got.append(_run_streaming(session, meta, xb, net.encoding) if meta["streaming"]
                       else session.run(["scores"], {meta["input_name"]: xb})[0])
    ref, got = np.concatenate(ref), np.concatenate(got)

    scale = steps * per_class
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
        "tolerance": {"max_vote_diff": max_vote_diff, "max_flip_rate": max_flip_rate},
    }
    report["passed"] = bool(report["top1_agree_unique"] == report["top1_unique"]
                            and report["max_vote_diff"] <= max_vote_diff and report["flip_rate"] <= max_flip_rate)
    return report


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
