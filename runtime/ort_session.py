"""An ONNX Runtime session for one exported model: execution providers and I/O binding.

``device="cpu"``: CPU EP. ``"cuda"``: TensorRT EP (where present; engines cached in
``<cache>/tensorrt``) and CUDA EP before CPU; if the session does not end up on CUDA (ORT falls
back silently, e.g. a CPU-only onnxruntime or a missing CUDA library) a :class:`DeviceError`
is raised. ``"auto"``: CUDA when available, else CPU.
On CUDA the batch is bound with I/O binding: one host→device copy in, the scores copied out.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import DeviceError, ModelError
from .models import cache_dir

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"


def choose_providers(device: str, available: list[str], trt_cache: Path | None = None) -> list:
    """Execution providers for ``device`` given ORT's available providers (in priority order)."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; use auto, cpu or cuda")
    if device == "cpu":
        return [CPU]
    gpu: list = []
    if TRT in available:
        opts = {"trt_engine_cache_enable": True}
        if trt_cache is not None:
            opts["trt_engine_cache_path"] = str(trt_cache)
        gpu.append((TRT, opts))
    if CUDA in available:
        gpu.append(CUDA)
    if device == "cuda" and not gpu:
        raise DeviceError("device cuda requested but this onnxruntime has no CUDA execution provider "
                          f"(available: {', '.join(available)}); install onnxruntime-gpu or use "
                          "--backend torch")
    return gpu + [CPU]


class OrtSession:
    """``run(x)`` maps an input batch (numpy) to the first output (numpy)."""

    def __init__(self, path: str | Path, device: str = "auto", threads: int | None = None,
                 trt_cache: Path | None = None) -> None:
        import onnxruntime as ort

        self._ort = ort
        available = ort.get_available_providers()
        if TRT in available and device != "cpu":
            trt_cache = trt_cache or cache_dir() / "tensorrt"  # built engines are reused across runs
            trt_cache.mkdir(parents=True, exist_ok=True)
        providers = choose_providers(device, available, trt_cache)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            so.intra_op_num_threads = threads
        so.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(os.fspath(path), so, providers=providers)
        except Exception as e:  # ORT raises its own classes (InvalidProtobuf, Fail, ...)
            reason = " ".join(str(e).split()).replace(os.fspath(path), "the file")
            raise ModelError(f"{path}: onnxruntime cannot load it ({reason})") from None
        self.providers = self.session.get_providers()
        self.on_cuda = CUDA in self.providers or TRT in self.providers
        if device == "cuda" and not self.on_cuda:
            raise DeviceError(f"device cuda requested but the session runs on {', '.join(self.providers)}"
                              " (ORT fell back; check the CUDA/cuDNN libraries onnxruntime-gpu needs)")
        self.device = "cuda" if self.on_cuda else "cpu"
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input_name, self.output_name = inp.name, out.name
        self.input_shape = inp.shape
        self.input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        self.fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)

    def run(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        x = np.ascontiguousarray(x, dtype=self.input_dtype)
        if self.fixed_batch is not None and n != self.fixed_batch:
            if n > self.fixed_batch:
                return np.concatenate([self.run(x[i:i + self.fixed_batch])
                                       for i in range(0, n, self.fixed_batch)])
            pad = np.zeros((self.fixed_batch - n, *x.shape[1:]), x.dtype)
            return self.run(np.concatenate([x, pad]))[:n]
        if not self.on_cuda:
            return self.session.run([self.output_name], {self.input_name: x})[0]
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(self.input_name, self._ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0))
        binding.bind_output(self.output_name, "cuda", 0)
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]
