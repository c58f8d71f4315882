"""PyTorch backend of :class:`~snnzoo.runtime.Predictor`, and the runtime's one door to the zoo
and the exporter: models are built (:mod:`snnzoo.zoo`) and exported (:mod:`snnzoo.export`) only
here, by imports inside the functions that need them, so the rest of the runtime stays torch-free.

The model runs in eval mode under ``torch.inference_mode``. On CUDA: bf16 autocast,
``torch.compile(mode="reduce-overhead")`` (inductor kernels replayed as CUDA graphs) with every
batch padded to ``batch_size`` so one graph serves all calls, and the events are binned on the
GPU (:mod:`snnzoo.runtime.binning_torch`), so only the raw events cross the bus. On CPU: fp32,
eager (compiling costs more than a CLI run saves).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import DeviceError, ModelError
from .model_info import ModelInfo
from .models import ModelRef


def load_checkpoint(folder: str | os.PathLike) -> nn.Module:
    """Eval-mode model from a checkpoint folder (``config.json`` + fp16 ``model.safetensors``)."""
    from snnzoo.zoo.pretrained import load_folder

    return load_folder(Path(folder)).eval()


def load_registry_model(name: str) -> nn.Module:
    """Eval-mode model ``name`` (registry id or ``hf-hub:org/name``) with its published weights."""
    from snnzoo.zoo.registry import create_model

    try:
        return create_model(name, pretrained=True).eval()
    except KeyError as e:
        raise ModelError(str(e.args[0]) if e.args else f"unknown model {name!r}") from None


def export_onnx(model: nn.Module, path: str | os.PathLike, weights: dict) -> None:
    """The unrolled ONNX export of ``model`` (:func:`snnzoo.export.onnx.export_onnx`)."""
    from snnzoo.export.onnx import export_onnx as export

    export(model, path, weights=weights)


def state_sha256(model: nn.Module) -> str:
    """sha256 over the state dict (names, dtypes, shapes, bytes), for cache keys."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{list(t.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def load_ref(ref: ModelRef) -> nn.Module:
    if ref.checkpoint is not None:
        return load_checkpoint(ref.checkpoint)
    if ref.registry_id is not None:
        return load_registry_model(ref.registry_id)
    raise ModelError(f"{ref.onnx}: the torch backend needs a checkpoint folder or registry id, "
                     "not an .onnx file (use --backend onnxruntime)")


def pick_device(device: str) -> torch.device:
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; use auto, cpu or cuda")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device cuda requested but torch {torch.__version__} sees no CUDA device "
                          f"(CUDA build: {torch.version.cuda or 'none'})")
    return torch.device(device)


class TorchBackend:
    """``scores(frames)`` for host frames; ``scores_events(streams)`` bins on the device first.

    ``bins_on_host``: on CPU the predictor's reader threads bin with numpy (overlapping the
    forward pass); on CUDA the raw events go to the GPU and are binned there."""

    def __init__(self, ref: ModelRef, device: str = "auto", batch_size: int = 64,
                 compile: bool | None = None) -> None:
        self.dev = pick_device(device)
        self.device = self.dev.type
        model = load_ref(ref).to(self.dev)
        self.info = ModelInfo.from_config(model.config, ref.name)
        self.cuda = self.dev.type == "cuda"
        self.bins_on_host = not self.cuda
        self.batch_size = batch_size
        self.model = torch.compile(model, mode="reduce-overhead", dynamic=False) \
            if (self.cuda if compile is None else compile) else model

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> np.ndarray:
        n = x.shape[0]
        if self.cuda and n < self.batch_size:  # one static shape → one CUDA graph
            x = torch.cat([x, x.new_zeros(self.batch_size - n, *x.shape[1:])])
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda):
            out = self.model(x)
        return out[:n].float().cpu().numpy()

    def scores(self, frames: np.ndarray) -> np.ndarray:
        return self.forward(torch.from_numpy(np.ascontiguousarray(frames, np.float32)).to(self.dev))

    def scores_events(self, streams: list[np.ndarray]) -> np.ndarray:
        from .binning_torch import bin_batch_torch

        return self.forward(bin_batch_torch(streams, self.info.sensor_size, self.info.binning, self.dev))
