"""CPU training throughput (samples/s) of the paper topologies and the compact models.

One training step = what `snnzoo train` runs per batch: uint8 batch → model input, forward
(fused STBP LIF), the config's loss, backward, optimizer step. Inputs are random at the data's
shape (binary event frames at ~13 % density like binned N-MNIST; uint8 images). Each model runs
at its default T with its shipped config's loss/optimiser; one warm-up step, then ``--steps``
timed steps. On a shared machine wall-clock samples/s depends on the load; samples per CPU
second (process time, all threads summed) depends on it much less.

``--amp fp32,bf16`` runs every setup in each precision, side by side in one table: ``bf16`` is
what ``snnzoo train --amp bf16`` does (``torch.autocast`` bf16, channels_last, LIF/QCFS state in
fp32); ``fp32`` is the default path. ``--keep-freed-memory`` applies glibc's ``mallopt`` (see
:func:`snnzoo.runtime.allocator.keep_freed_memory`) before anything runs.

    python benchmarks/bench_train_cpu.py [--batch-size 32] [--steps 3] [--threads N] [--models a,b]
        [--amp fp32,bf16] [--keep-freed-memory]
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import contextlib

import torch

from snnzoo.runtime.allocator import keep_freed_memory
from snnzoo.zoo.registry import create_model
from snnzoo.zoo.training.config import load_config
from snnzoo.zoo.training.data import to_input
from snnzoo.zoo.training.optim import build_optimizer, loss_fn

SETUPS = [  # (label, config name)
    ("wu2019_nmnist (paper, NeuNorm)", "nmnist_paper"),
    ("wu2019_nmnist (paper, no NeuNorm)", "nmnist_paper_noneunorm"),
    ("wu2019_dvscifar10 (paper, NeuNorm)", "dvscifar10_paper"),
    ("wu2019_cifar10 (paper, NeuNorm)", "cifar10_paper"),
    ("nmnist_compact", "nmnist_compact"),
    ("cifar10_compact", "cifar10_compact"),
    ("cifar10_qcfs ANN twin (QCFS, 1 step)", "cifar10_qcfs_ann"),
    ("cifar10_qcfs_vgg ANN twin (QCFS, 1 step)", "cifar10_qcfs_vgg_ann"),
    ("cifar10_qcfs_vgg_stbp (STBP fine-tuning, IF, T=8)", "cifar10_qcfs_vgg_stbp"),
]


def random_batch(cfg: dict, batch: int, gen: torch.Generator) -> torch.Tensor:
    inp = cfg["input"]
    if inp["kind"] == "events":
        shape = (batch, inp["time_steps"], *cfg["model"]["in_shape"])
        return (torch.rand(shape, generator=gen) < 0.13).to(torch.uint8)
    return torch.randint(0, 256, (batch, *inp["shape"]), generator=gen, dtype=torch.uint8)


def bench(config: str, batch: int, steps: int, amp: str) -> dict:
    cfg = load_config(config)
    torch.manual_seed(0)
    model = create_model(cfg["model"], **cfg["model_args"]).train()
    bf16 = amp == "bf16"
    if bf16:
        model.to(memory_format=torch.channels_last)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    opt = build_optimizer(model.parameters(), cfg)
    loss = loss_fn(cfg, model.num_classes)
    gen = torch.Generator().manual_seed(0)
    x_u8 = random_batch(model.config, batch, gen)
    y = torch.randint(0, model.num_classes, (batch,), generator=gen)
    times, cpu = [], []
    for i in range(steps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        x = to_input(x_u8, model.config["input"], torch.device("cpu"))
        if bf16 and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            scores = model(x)
        value = loss(scores.float(), y)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        if i:  # the first step warms up
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    step, cpu_step = sorted(times)[len(times) // 2], sorted(cpu)[len(cpu) // 2]
    return {"model": cfg["model"], "T": model.time_steps, "params_M": model.num_params() / 1e6,
            "step_s": step, "samples_per_s": batch / step, "samples_per_cpu_s": batch / cpu_step}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--models", default="", help="comma-separated config names (default: all)")
    ap.add_argument("--amp", default="fp32", help="comma-separated precisions: fp32, bf16")
    ap.add_argument("--keep-freed-memory", action="store_true", help="glibc mallopt before running")
    args = ap.parse_args()
    amps = args.amp.split(",")
    if not set(amps) <= {"fp32", "bf16"}:
        ap.error("--amp takes fp32 and/or bf16")
    malloc = keep_freed_memory() if args.keep_freed_memory else "default glibc malloc"
    if args.threads:
        torch.set_num_threads(args.threads)
    chosen = [s for s in SETUPS if not args.models or s[1] in args.models.split(",")]
    print(f"# CPU training throughput, batch {args.batch_size}, median of {args.steps} steps after 1 warm-up")
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at start; {malloc}")
    cols = "".join(f" {a} samples/s | {a} samples/CPU-s |" for a in amps)
    print(f"| {'setup':36s} | config                     |  T | params (M) |{cols}" + (" bf16 / fp32 |" if len(amps) == 2 else ""))
    print(f"|{'-' * 38}|{'-' * 28}|----|------------|" + "---:|---:|" * len(amps) + ("---:|" if len(amps) == 2 else ""))
    for label, config in chosen:
        rs = [bench(config, args.batch_size, args.steps, a) for a in amps]
        cells = "".join(f" {r['samples_per_s']:.1f} | {r['samples_per_cpu_s']:.1f} |" for r in rs)
        ratio = f" {rs[1]['samples_per_s'] / rs[0]['samples_per_s']:.2f}× |" if len(rs) == 2 else ""
        print(f"| {label:36s} | {config:26s} | {rs[0]['T']:2d} | {rs[0]['params_M']:10.2f} |{cells}{ratio}", flush=True)


if __name__ == "__main__":
    main()
