"""int8 ONNX variants of the default model (nmnist_compact) vs its fp32 export: speed and accuracy.

Variants (ONNX Runtime's quantization tools, on the exported fp32 graph; Conv and Gemm):

- ``dynamic``: weights int8 per channel, the layer inputs quantized per call from their range
  (``quantize_dynamic``; ConvInteger / MatMulInteger). The first layer's inputs are binary
  frames and later layers' are spikes minus NeuNorm's term, so the activations lose little;
- ``static QDQ``: weights int8 per channel and activations uint8 with ranges calibrated on the
  first ``--calibration`` recordings (``quantize_static``, QDQ format, MinMax).

Accuracy: all ``--samples`` real N-MNIST recordings (``$SNNZOO_DATA/nmnist``, binned with the
model's spec) and the ones after the calibration set; agreement = same top-1 as fp32. Speed:
samples/s (median of ``--repeats`` interleaved repeats of ``--min-time`` s) at batch 32 and 1,
ONNX Runtime on the CPU with ``--threads`` intra-op threads for every variant.

    python benchmarks/bench_int8.py [--samples 1000] [--calibration 100] [--threads 2]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, compare, nmnist_frames  # noqa: E402

from snnzoo.runtime.models import resolve  # noqa: E402
from snnzoo.runtime.onnx_cache import onnx_path  # noqa: E402
from snnzoo.runtime.ort_session import OrtSession  # noqa: E402
from snnzoo.runtime.model_info import ModelInfo  # noqa: E402
from snnzoo.runtime.onnx_metadata import read_metadata  # noqa: E402


def quantize(fp32: Path, out: Path, calibration: np.ndarray) -> dict[str, Path]:
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(calibration[i:i + 8] for i in range(0, len(calibration), 8))

        def get_next(self):
            batch = next(self.it, None)
            return None if batch is None else {"frames": batch}

    paths = {"int8 dynamic": out / "dynamic.onnx", "int8 static QDQ": out / "static_qdq.onnx"}
    quantize_dynamic(fp32, paths["int8 dynamic"], weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["Conv", "Gemm", "MatMul"])
    quantize_static(fp32, paths["int8 static QDQ"], Frames(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["Conv", "Gemm", "MatMul"])
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="data root holding nmnist/Train")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--calibration", type=int, default=100, help="first recordings used to calibrate")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    fp32 = onnx_path(resolve(None))
    base = OrtSession(fp32, "cpu", args.threads)
    info = ModelInfo.from_metadata(read_metadata(base.session), "nmnist_compact")
    frames, labels = nmnist_frames(info.binning, args.data, args.samples)
    print(f"python {' '.join(sys.argv)}\n{len(frames)} real N-MNIST recordings; ONNX Runtime CPU, "
          f"{args.threads} intra-op threads; CPU shared with a training run (timings under load)")
    with tempfile.TemporaryDirectory() as tmp:
        variants = {"fp32": fp32, **quantize(fp32, Path(tmp), frames[:args.calibration])}
        sessions = {name: OrtSession(p, "cpu", args.threads) for name, p in variants.items()}
        sizes = {name: p.stat().st_size / 2**20 for name, p in variants.items()}
        preds = {name: np.concatenate([s.run(frames[i:i + 64]) for i in range(0, len(frames), 64)]).argmax(1)
                 for name, s in sessions.items()}
        speed = {}
        for batch in (32, 1):
            x = np.ascontiguousarray(np.resize(frames, (max(batch, 32), *frames.shape[1:]))[:batch])
            speed[batch] = compare({name: (lambda i, s=s: s.run(x)) for name, s in sessions.items()},
                                   batch, args.min_time, args.repeats)
    held = slice(args.calibration, None)
    print("\n| variant | file [MB] | accuracy (all) | accuracy (after calibration set) | same top-1 as fp32 "
          "| batch 32 samples/s | batch 1 samples/s | speed vs fp32 (b32 / b1) |\n|---|---|---|---|---|---|---|---|")
    for name in sessions:
        acc, acc_h = (preds[name] == labels).mean() * 100, (preds[name][held] == labels[held]).mean() * 100
        same = (preds[name] == preds["fp32"]).mean() * 100
        print(f"| {name} | {sizes[name]:.2f} | {acc:.2f} % | {acc_h:.2f} % | {same:.1f} % | {speed[32][name]:,.0f} "
              f"| {speed[1][name]:,.0f} | {speed[32][name] / speed[32]['fp32']:.2f}× / "
              f"{speed[1][name] / speed[1]['fp32']:.2f}× |")


if __name__ == "__main__":
    main()
