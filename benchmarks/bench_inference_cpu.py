"""CPU inference, samples/s: our ONNX Runtime path vs our eager torch vs SpikingJelly vs snnTorch.

Same network (``create_model(name, neunorm=False)``: the peers have no NeuNorm), same seeded
weights copied into each peer, same inputs (real N-MNIST recordings binned with the model's own
binning spec). Before timing, every contender's scores are compared with our eager torch.

    python benchmarks/bench_inference_cpu.py                 # both N-MNIST nets, batch 32 and 1
    python benchmarks/bench_inference_cpu.py --quick         # a fast check that everything runs
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (add_cpu_args, add_timing_args, agreement, batches, compare, fmt_rate, format_agreement,  # noqa: E402
                    machine_header, markdown_table, nmnist_frames)
from peers import PEERS, available, build_peer  # noqa: E402

import snnzoo  # noqa: E402
from snnzoo.runtime.allocator import keep_freed_memory  # noqa: E402

PEER_LABEL = {"spikingjelly": "SpikingJelly", "snntorch": "snnTorch"}
COLUMNS = ["ours · ONNX Runtime", "ours · eager torch", "SpikingJelly", "snnTorch"]


def ort_runner(net: torch.nn.Module, workdir: Path, threads: int) -> tuple[Callable | None, str]:
    """Our ONNX path: ``snnzoo.export`` → ``snnzoo.runtime``'s ORT session; or why it is missing."""
    try:
        from snnzoo.export.onnx import export_onnx
        from snnzoo.runtime.ort_session import OrtSession
    except ImportError as e:
        return None, f"our ONNX path is not available yet ({e})"
    path = workdir / f"{net.config['name']}.onnx"
    export_onnx(net, path)
    session = OrtSession(path, device="cpu", threads=threads)
    return session.run, f"ONNX Runtime session on {path.name}"


def eager_runner(module: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()
    return run


def scores_of(run: Callable[[np.ndarray], np.ndarray], frames: np.ndarray, batch: int = 32) -> np.ndarray:
    return np.concatenate([run(frames[i:i + batch]) for i in range(0, len(frames), batch)])


def bench_model(name: str, args: argparse.Namespace) -> tuple[list[list[str]], list[str]]:
    torch.manual_seed(args.seed)
    net = snnzoo.create_model(name, neunorm=False).eval()
    frames, _ = nmnist_frames(net.config["input"]["binning"], args.data, args.samples)
    runners: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    notes = [f"\n**{name}** (neunorm=False, T={net.time_steps}, {net.num_params() / 1e6:.2f} M params), "
             f"{len(frames)} real N-MNIST recordings:"]
    with tempfile.TemporaryDirectory() as tmp:
        ort, why = ort_runner(net, Path(tmp), args.threads)
        if ort is not None:
            runners["ours · ONNX Runtime"] = ort
        else:
            notes.append(f"- ours · ONNX Runtime: not measured — {why}")
        runners["ours · eager torch"] = eager_runner(net)
        for peer in args.peers:
            reason = available(peer)
            if reason:
                notes.append(f"- {PEER_LABEL[peer]}: not measured — {reason}")
                continue
            runners[PEER_LABEL[peer]] = eager_runner(build_peer(peer, net))

        ref = scores_of(runners["ours · eager torch"], frames)
        for label, run in runners.items():
            if label != "ours · eager torch":
                notes.append(f"- {label} vs ours · eager torch: {format_agreement(agreement(ref, scores_of(run, frames)))}")

        rows = []
        for batch in args.batch:
            xs = batches(frames, batch)
            fns = {label: (lambda i, run=run: run(xs[i % len(xs)])) for label, run in runners.items()}
            rates = compare(fns, batch, args.min_time, args.repeats, args.warmup)
            ort_rate = rates.get("ours · ONNX Runtime")
            ratio = lambda other: f"{ort_rate / rates[other]:.1f}×" if ort_rate and other in rates else "—"  # noqa: E731
            rows.append([name, batch] + [fmt_rate(rates.get(c)) for c in COLUMNS]
                        + [ratio("ours · eager torch"), ratio("SpikingJelly")])
            print(f"  {name} batch {batch}: " + ", ".join(f"{k} {fmt_rate(v)}/s" for k, v in rates.items()),
                  file=sys.stderr)
    return rows, notes



def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["wu2019_nmnist", "nmnist_compact"])
    p.add_argument("--batch", nargs="+", type=int, default=[32, 1])
    p.add_argument("--peers", nargs="*", default=list(PEERS), choices=PEERS)
    add_cpu_args(p, torch.get_num_threads())
    add_timing_args(p, samples=64, samples_help="real recordings to use", min_time=2.0, repeats=5, warmup=2)
    args = p.parse_args(argv)
    if args.quick:
        args.samples, args.min_time, args.repeats, args.warmup = 32, 0.2, 1, 1
    torch.set_num_threads(args.threads)
    logging.getLogger("torch._library.triton").setLevel(logging.ERROR)

    rows, notes = [], []
    if args.keep_freed_memory:
        notes.append(f"- allocator: {keep_freed_memory()} in this process (all contenders)")
    for name in args.models:
        r, n = bench_model(name, args)
        rows += r
        notes += n
    print(machine_header("CPU inference (samples/s, higher is better)", args.threads))
    print(markdown_table(["model", "batch"] + COLUMNS + ["ORT / eager", "ORT / SJ"], rows))
    print()
    print("\n".join(notes))


if __name__ == "__main__":
    main()
