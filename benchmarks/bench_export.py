"""ONNX export of every registry model: graph size, export time, ONNX Runtime vs PyTorch on the
CPU, and the spike flip rate between the two on real recordings.

Per model, at its own T: nodes and file size of the unrolled graph; export time (wall, one run);
samples/s of ORT and of eager PyTorch (fp32, ``no_grad``) at ``--batch`` (median of interleaved
repeats, ``common.compare``); and ``verify_onnx`` on real data — N-MNIST recordings for the
N-MNIST models, DVS128 clips (the CIFAR10-DVS sensor) for wu2019_dvscifar10, lossless CIFAR-10
test images for the image models. Flip rate = net voting-spike count differences / all voting
spikes. Published weights are used where a model has them, else a seeded random init (column
"weights").

    python benchmarks/bench_export.py [--models NAME ...] [--batch 32] [--samples 64] [--quick]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from PIL import Image
from tqdm import tqdm

import snnzoo
from snnzoo.export import export_onnx, verify_onnx
from snnzoo.export.onnx import prepare
from snnzoo.export.verify import event_inputs
from snnzoo.runtime.readers import read_dvsgesture_bs2

from common import DATA, batches, compare, fmt_rate, machine_header, markdown_table, nmnist_files


def real_inputs(net, n: int) -> tuple[np.ndarray, str]:
    cfg = net.config
    if cfg["input"]["kind"] == "image":
        sprite = np.asarray(Image.open(DATA / "cifar10" / "cifar10_batch_50.png").convert("RGB"))
        imgs = sprite.reshape(-1, 32, 32, 3)[:n].transpose(0, 3, 1, 2).astype(np.float32)
        inp = cfg["input"]
        mean, std = np.array(inp["mean"], np.float32), np.array(inp["std"], np.float32)
        return (imgs * inp["scale"] - mean[:, None, None]) / std[:, None, None], f"{len(imgs)} CIFAR-10 test images"
    if tuple(cfg["input"]["sensor_size"]) == (34, 34, 2):
        from snnzoo.runtime.readers import read_nmnist_bin

        return event_inputs([read_nmnist_bin(f) for f in nmnist_files(DATA, n)], cfg), f"{n} N-MNIST recordings"
    clips = sorted((DATA / "dvsgesture").glob("*.bs2"))[:n]
    return event_inputs([read_dvsgesture_bs2(f) for f in clips], cfg), f"{len(clips)} DVS128 clips"


def bench(name: str, args, workdir: Path) -> list[object]:
    published = name in snnzoo.list_models(pretrained=True)
    torch.manual_seed(0)
    net = prepare(snnzoo.create_model(name, pretrained=published, **({"time_steps": 2} if args.quick else {})))
    path = workdir / f"{name}.onnx"
    start = time.perf_counter()
    export_onnx(net, path)
    export_s = time.perf_counter() - start
    nodes = len(onnx.load(str(path), load_external_data=False).graph.node)

    x, what = real_inputs(net, args.samples)
    report = verify_onnx(path, net, x)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    data = batches(x, args.batch)

    def run_torch(i: int) -> object:
        with torch.no_grad():
            return net(torch.from_numpy(data[i % len(data)]))

    def run_ort(i: int) -> object:
        return session.run(["scores"], {feed: data[i % len(data)]})

    rates = compare({"torch": run_torch, "ort": run_ort}, args.batch, min_time=args.min_time,
                    repeats=args.repeats, warmup=1)
    return [name, net.time_steps, "published" if published else "random init", nodes,
            f"{path.stat().st_size / 1e6:.1f}", f"{export_s:.1f}", fmt_rate(rates["torch"]), fmt_rate(rates["ort"]),
            f"{rates['ort'] / rates['torch']:.2f}×", what,
            f"{report['top1_agree_unique']}/{report['top1_unique']}",
            f"{report['flip_rate']:.2e} ({report['vote_flips']}/{report['voting_spikes']})",
            "yes" if report["passed"] else "NO"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=snnzoo.list_models())
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--samples", type=int, default=64, help="real inputs for the flip rate")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=2.0, help="seconds per timed repeat")
    ap.add_argument("--quick", action="store_true", help="T=2, 8 samples, 1 short repeat: a smoke run")
    args = ap.parse_args()
    if args.quick:
        args.samples, args.batch, args.repeats, args.min_time = 8, 8, 1, 0.1
    print(machine_header("ONNX export: size, export time, ORT vs PyTorch (CPU), flip rate",
                         threads=torch.get_num_threads()))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in tqdm(args.models, desc="models", leave=False):
            rows.append(bench(name, args, Path(tmp)))
    print(markdown_table(["model", "T", "weights", "ONNX nodes", "MB", "export s", f"torch samples/s (b={args.batch})",
                          f"ORT samples/s (b={args.batch})", "ORT/torch", "verified on", "top-1 same (unique)",
                          "flip rate (flips/voting spikes)", "passed"], rows))


if __name__ == "__main__":
    main()
