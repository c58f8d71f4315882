"""GPU training and inference samples/s of wu2019_nmnist (T=10, bf16): ours eager, ours with
torch.compile, ours captured in one CUDA graph, and SpikingJelly 2.0.

Same network (``neunorm=False``: SpikingJelly has no NeuNorm; ``surrogate="polynomial"`` =
SpikingJelly's ``PiecewiseQuadratic``), same seeded weights, same real N-MNIST batches (resident
on the device; each call takes the next one). Training = forward + backward (MSE on the voted
rates) + Adam step. bf16 = ``torch.autocast``; weights, optimizer state and loss stay fp32.
Before timing, every contender's fp32 scores are compared with our eager fp32 forward.

SpikingJelly 2.0 has no CuPy backend any more: its LIF picks a native CUDA, Triton or torch
kernel (``SJ_LIF_CUDA_IMPLEMENTATION=auto|cuda|triton|torch``); the notes say which ran. Under
plain ``torch.autocast`` its neuron state takes the bf16 input dtype, and a non-fp32 state sends
its LIF to the Python reference loop; ``spikingjelly-prec`` (CUDA, bf16 only) prepares the model
with SpikingJelly's own ``prepare_model_for_precision`` (Triton neurons, bf16 storage, fp32
compute) — the fast bf16 path it documents.

A contender that fails to build or run (a missing kernel, a compile error) is reported in the
notes and left out; the others still run.

    python benchmarks/bench_gpu.py                          # on a CUDA device
    python benchmarks/bench_gpu.py --device cpu --smoke     # a seconds-long check of the script
"""
from __future__ import annotations

import argparse
import copy
import logging
import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (add_timing_args, agreement, compare, fmt_rate, format_agreement, machine_header,  # noqa: E402
                    markdown_table, nmnist_frames)
from peers import available, build_peer  # noqa: E402

import snnzoo  # noqa: E402

MODES = ("eager", "compile", "cudagraph", "spikingjelly", "spikingjelly-prec")
LABEL = {"eager": "ours · eager", "compile": "ours · torch.compile", "cudagraph": "ours · CUDA graph",
         "spikingjelly": "SpikingJelly · autocast", "spikingjelly-prec": "SpikingJelly · precision API"}


def mse(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """MSE against the one-hot label (built with scatter: ``one_hot`` checks its input on the
    host, which a CUDA graph capture forbids)."""
    target = torch.zeros(scores.shape, device=scores.device).scatter_(1, labels[:, None], 1.0)
    return ((scores.float() - target) ** 2).mean()


class Bench:
    """Builds one contender's inference or training step ``fn(i)`` on the resident batches."""

    def __init__(self, net: nn.Module, xs: list[torch.Tensor], ys: list[torch.Tensor],
                 device: torch.device, dtype: torch.dtype) -> None:
        self.net, self.xs, self.ys, self.device, self.dtype = net, xs, ys, device, dtype

    def autocast(self):
        # no weight-cast cache: it must not outlive a CUDA graph capture
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32,
                              cache_enabled=False)

    def model(self, mode: str) -> tuple[nn.Module, Callable]:
        """The contender's module and the context its forward runs in."""
        if mode == "spikingjelly-prec":
            return sj_precision(self.net, self.device, self.dtype)
        if mode == "spikingjelly":
            return build_peer("spikingjelly", self.net).to(self.device), self.autocast
        model = copy.deepcopy(self.net)
        return (torch.compile(model) if mode == "compile" else model), self.autocast

    def infer(self, mode: str) -> Callable[[int], object]:
        model, ctx = self.model(mode)
        model.eval()
        if mode == "cudagraph":
            return self._graphed(model, train=False)

        def step(i: int) -> torch.Tensor:
            with torch.inference_mode(), ctx():
                return model(self.xs[i % len(self.xs)])
        return step

    def train(self, mode: str) -> Callable[[int], object]:
        model, ctx = self.model(mode)
        model.train()
        if mode == "cudagraph":
            return self._graphed(model, train=True)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=self.device.type == "cuda")

        def step(i: int) -> None:
            opt.zero_grad(set_to_none=True)
            with ctx():
                scores = model(self.xs[i % len(self.xs)])
            mse(scores, self.ys[i % len(self.ys)]).backward()
            opt.step()
        return step

    def _graphed(self, model: nn.Module, train: bool) -> Callable[[int], object]:
        """The whole step (forward, and for training backward + Adam) captured in one CUDA graph;
        each call copies the next batch into the static input and replays."""
        if self.device.type != "cuda":
            raise RuntimeError("CUDA graphs need a CUDA device")
        static_x, static_y = self.xs[0].clone(), self.ys[0].clone()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=True) if train else None

        def body() -> torch.Tensor:
            if not train:
                with torch.inference_mode(), self.autocast():
                    return model(static_x)
            with self.autocast():
                scores = model(static_x)
            loss = mse(scores, static_y)
            loss.backward()
            opt.step()
            return loss

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                if opt is not None:
                    opt.zero_grad(set_to_none=True)
                body()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        if opt is not None:
            opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            out = body()

        def step(i: int) -> torch.Tensor:
            static_x.copy_(self.xs[i % len(self.xs)])
            static_y.copy_(self.ys[i % len(self.ys)])
            graph.replay()
            return out
        return step


def sj_precision(net: nn.Module, device: torch.device, dtype: torch.dtype) -> tuple[nn.Module, Callable]:
    """SpikingJelly prepared by its precision API: bf16 layers, Triton LIF with bf16 state."""
    if device.type != "cuda" or dtype != torch.bfloat16:
        raise RuntimeError("SpikingJelly's precision API path is measured on CUDA with bf16 only")
    from spikingjelly.activation_based.precision import PrecisionConfig, prepare_model_for_precision

    peer = build_peer("spikingjelly", net).to(device)
    art = prepare_model_for_precision(peer, device, PrecisionConfig(mode="bf16", neuron_storage="bf16"))
    return art.model, art.autocast_context


def sj_implementation(device: torch.device) -> str:
    """Which LIF kernel SpikingJelly selected on ``device`` (after it ran there)."""
    if device.type != "cuda":
        return "torch reference (CPU)"
    try:
        from spikingjelly._ops.lif import _selection
        return _selection._selections[device.index or 0].name
    except (ImportError, AttributeError, KeyError):
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--model", default="wu2019_nmnist")
    p.add_argument("--time-steps", type=int, default=None, help="default: the model's (10)")
    p.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--train-batch", nargs="+", type=int, default=[256])
    p.add_argument("--infer-batch", nargs="+", type=int, default=[2048])
    add_timing_args(p, samples=1000, samples_help="real recordings resident on the device", min_time=3.0,
                    repeats=3, warmup=3)
    p.add_argument("--smoke", action="store_true",
                   help="tiny run that checks the script: nmnist_compact, T=2, batch 4, a few calls")
    args = p.parse_args(argv)
    if args.smoke:
        args.model, args.time_steps, args.samples = "nmnist_compact", 2, 8
        args.train_batch, args.infer_batch = [4], [4]
        args.min_time, args.repeats, args.warmup = 0.05, 1, 1
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    logging.getLogger("torch._library.triton").setLevel(logging.ERROR)
    skipped = []
    modes = []
    for m in args.modes:
        why = None
        if m == "cudagraph" and device.type != "cuda":
            why = "needs a CUDA device"
        elif m == "spikingjelly-prec" and (device.type != "cuda" or dtype != torch.bfloat16):
            why = "SpikingJelly's precision API path is measured on CUDA with bf16 only"
        elif m.startswith("spikingjelly"):
            why = available("spikingjelly")
        if why:
            skipped.append(f"- {LABEL[m]}: not run — {why}")
        else:
            modes.append(m)

    torch.manual_seed(args.seed)
    kw = {"time_steps": args.time_steps} if args.time_steps else {}
    net = snnzoo.create_model(args.model, neunorm=False, surrogate="polynomial", **kw).to(device)
    frames, labels = nmnist_frames(net.config["input"]["binning"], args.data, args.samples)
    sync = torch.cuda.synchronize if device.type == "cuda" else None

    notes = [f"\n**{args.model}** (neunorm=False, surrogate=polynomial, T={net.time_steps}, "
             f"{net.num_params() / 1e6:.2f} M params), {args.dtype}, {len(frames)} real N-MNIST "
             f"recordings resident on {device}:"] + skipped
    check = Bench(net, [torch.from_numpy(frames[:64]).to(device)], [], device, torch.float32)
    ref = check.infer("eager")(0).float().cpu().numpy()
    for mode in [m for m in modes if m in ("compile", "spikingjelly")]:  # fp32 agreement
        try:
            out = check.infer(mode)(0).float().cpu().numpy()
            notes.append(f"- {LABEL[mode]} vs ours · eager (fp32): {format_agreement(agreement(ref, out))}")
        except Exception as e:  # noqa: BLE001  (reported, not fatal: the other contenders still run)
            notes.append(f"- {LABEL[mode]}: agreement check failed — {type(e).__name__}: {e}")
    del check

    rows = []
    for task, sizes in (("inference", args.infer_batch), ("training", args.train_batch)):
        for batch in sizes:
            idx = np.arange(max(batch, len(frames))) % len(frames)
            groups = [idx[i:i + batch] for i in range(0, len(idx) - batch + 1, batch)]
            xs = [torch.from_numpy(frames[g]).to(device) for g in groups]
            ys = [torch.from_numpy(labels[g]).to(device) for g in groups]
            bench = Bench(net, xs, ys, device, dtype)
            fns = {}
            for m in modes:
                try:
                    fn = bench.infer(m) if task == "inference" else bench.train(m)
                    fn(0)  # builds kernels / compiles / captures now, so a failure is caught here
                    fns[LABEL[m]] = fn
                except Exception as e:  # noqa: BLE001  (reported, not fatal)
                    notes.append(f"- {LABEL[m]}, {task} batch {batch}: failed — {type(e).__name__}: "
                                 f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}")
            rates = compare(fns, batch, args.min_time, args.repeats, args.warmup, sync=sync) if fns else {}
            rows.append([task, batch] + [fmt_rate(rates.get(LABEL[m])) for m in args.modes])
            print(f"  {task} batch {batch}: " + ", ".join(f"{k} {fmt_rate(v)}/s" for k, v in rates.items()),
                  file=sys.stderr)
            del fns, bench, xs, ys
            if device.type == "cuda":
                torch.cuda.empty_cache()
    if any(m.startswith("spikingjelly") for m in modes):
        notes.append(f"- SpikingJelly LIF kernel: {sj_implementation(device)} "
                     f"(SJ_LIF_CUDA_IMPLEMENTATION={os.environ.get('SJ_LIF_CUDA_IMPLEMENTATION', 'auto')})")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(machine_header(f"{name}: {args.model} samples/s, {args.dtype} (higher is better)"))
    print(markdown_table(["task", "batch"] + [LABEL[m] for m in args.modes], rows))
    print()
    print("\n".join(notes))


if __name__ == "__main__":
    main()
