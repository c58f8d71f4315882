"""CPU training step, samples/s: ours vs SpikingJelly vs snnTorch (forward + backward + Adam step).

Same network (``create_model(name, neunorm=False, surrogate="polynomial")``), same seeded initial
weights copied into each peer, same batches of real N-MNIST recordings, same loss (MSE of the
voted rates against the one-hot label, the paper's). The polynomial surrogate is used because
SpikingJelly's ``PiecewiseQuadratic(alpha = √a/2)`` is exactly it, so our gradients and
SpikingJelly's can be compared before timing. snnTorch runs its default ATan surrogate and
detaches the reset (its design), so only its loss is compared.

    python benchmarks/bench_train_cpu_peers.py               # both N-MNIST nets, batch 32
    python benchmarks/bench_train_cpu_peers.py --quick
"""
from __future__ import annotations

import argparse
import copy
import logging
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (add_cpu_args, add_timing_args, compare, fmt_rate, machine_header, markdown_table,  # noqa: E402
                    nmnist_frames)
from peers import PEERS, available, build_peer  # noqa: E402

import snnzoo  # noqa: E402
from snnzoo.runtime.allocator import keep_freed_memory  # noqa: E402

PEER_LABEL = {"spikingjelly": "SpikingJelly", "snntorch": "snnTorch"}
COLUMNS = ["ours", "SpikingJelly", "snnTorch"]


def mse(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return ((scores - nn.functional.one_hot(labels, scores.shape[1]).to(scores.dtype)) ** 2).mean()


def grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, list[torch.Tensor]]:
    """Loss and the gradients of all parameters (in registration order) on one batch."""
    model.zero_grad(set_to_none=True)
    loss = mse(model(x), y)
    loss.backward()
    out = [p.grad.detach().clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    return float(loss.detach()), out


def grad_note(label: str, ours: tuple[float, list], other: tuple[float, list], compare_grads: bool) -> str:
    note = f"- {label}: loss {other[0]:.6f} vs ours {ours[0]:.6f}"
    if compare_grads:
        if [a.shape for a in other[1]] != [b.shape for b in ours[1]]:
            raise RuntimeError(f"{label}: parameters do not line up with ours")
        rel = max(float((a - b).norm() / b.norm().clamp_min(1e-12)) for a, b in zip(other[1], ours[1]))
        note += f"; max relative gradient difference over all parameters {rel:.2e}"
    else:
        note += " (gradients differ by design: ATan surrogate, detached reset)"
    return note


def bench_model(name: str, args: argparse.Namespace) -> tuple[list[list[str]], list[str]]:
    torch.manual_seed(args.seed)
    net = snnzoo.create_model(name, neunorm=False, surrogate="polynomial").train()
    frames, labels = nmnist_frames(net.config["input"]["binning"], args.data, args.samples)
    xs = [torch.from_numpy(frames[i:i + args.batch]) for i in range(0, len(frames) - args.batch + 1, args.batch)]
    ys = [torch.from_numpy(labels[i:i + args.batch]) for i in range(0, len(labels) - args.batch + 1, args.batch)]
    if not xs:
        sys.exit(f"bench_train_cpu_peers: error: --samples {args.samples} < --batch {args.batch}")

    models: dict[str, nn.Module] = {"ours": copy.deepcopy(net)}
    notes = [f"\n**{name}** (neunorm=False, surrogate=polynomial, T={net.time_steps}, "
             f"{net.num_params() / 1e6:.2f} M params), batches of {args.batch} real N-MNIST recordings:"]
    for peer in args.peers:
        reason = available(peer)
        if reason:
            notes.append(f"- {PEER_LABEL[peer]}: not measured — {reason}")
        else:
            models[PEER_LABEL[peer]] = build_peer(peer, net)

    ours = grads(models["ours"], xs[0], ys[0])
    for label, model in models.items():
        if label != "ours":
            notes.append(grad_note(label, ours, grads(model, xs[0], ys[0]), label == "SpikingJelly"))

    def step_fn(model: nn.Module):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step(i: int) -> None:
            opt.zero_grad(set_to_none=True)
            mse(model(xs[i % len(xs)]), ys[i % len(ys)]).backward()
            opt.step()
        return step

    rates = compare({label: step_fn(m) for label, m in models.items()}, args.batch, args.min_time,
                    args.repeats, args.warmup)
    print(f"  {name} batch {args.batch}: " + ", ".join(f"{k} {fmt_rate(v)}/s" for k, v in rates.items()),
          file=sys.stderr)
    ratio = lambda other: f"{rates['ours'] / rates[other]:.2f}×" if other in rates else "—"  # noqa: E731
    row = [name, args.batch] + [fmt_rate(rates.get(c)) for c in COLUMNS] + [ratio("SpikingJelly"), ratio("snnTorch")]
    return [row], notes


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["wu2019_nmnist", "nmnist_compact"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--peers", nargs="*", default=list(PEERS), choices=PEERS)
    add_cpu_args(p, torch.get_num_threads())
    add_timing_args(p, samples=128, samples_help="real recordings to cycle through", min_time=5.0,
                    repeats=3, warmup=1)
    args = p.parse_args(argv)
    if args.quick:
        args.samples, args.min_time, args.repeats, args.warmup = max(args.batch, 32), 0.1, 1, 1
    torch.set_num_threads(args.threads)
    logging.getLogger("torch._library.triton").setLevel(logging.ERROR)

    rows, notes = [], []
    if args.keep_freed_memory:
        notes.append(f"- allocator: {keep_freed_memory()} in this process (all contenders)")
    for name in args.models:
        r, n = bench_model(name, args)
        rows += r
        notes += n
    print(machine_header("CPU training step: forward + backward + Adam (samples/s, higher is better)",
                         args.threads))
    print(markdown_table(["model", "batch"] + COLUMNS + ["ours / SJ", "ours / snnTorch"], rows))
    print()
    print("\n".join(notes))


if __name__ == "__main__":
    main()
