"""Shared pieces of the benchmark scripts: real N-MNIST inputs, timing, tables, machine info.

Throughput (:func:`compare`) is ``calls · batch / seconds`` of the median repeat; each repeat
runs a contender until ``min_time`` seconds have passed (at least once), after ``warmup`` untimed
calls, and the contenders' repeats are interleaved.
"""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
import argparse
from typing import Callable, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SNNZOO_DATA", REPO.parent / "shared" / "data"))


def add_timing_args(p: argparse.ArgumentParser, samples: int, samples_help: str, min_time: float,
                    repeats: int, warmup: int) -> None:
    """The options every side-by-side timing script shares (defaults per script)."""
    p.add_argument("--samples", type=int, default=samples, help=samples_help)
    p.add_argument("--min-time", type=float, default=min_time, help="seconds per timed repeat")
    p.add_argument("--repeats", type=int, default=repeats)
    p.add_argument("--warmup", type=int, default=warmup)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", type=Path, default=DATA, help="data root holding nmnist/Train")


def add_cpu_args(p: argparse.ArgumentParser, threads: int) -> None:
    """--threads, --keep-freed-memory and --quick of the CPU timing scripts."""
    p.add_argument("--threads", type=int, default=threads,
                   help="intra-op threads for torch and ONNX Runtime alike (default: torch's)")
    p.add_argument("--keep-freed-memory", action="store_true",
                   help="tune glibc malloc to reuse freed memory (speeds up every eager contender)")
    p.add_argument("--quick", action="store_true", help="short run: a check, not a measurement")


def nmnist_files(root: Path = DATA, n: int = 64) -> list[Path]:
    """The first ``n`` N-MNIST training recordings (``Train/<label>/<idx>.bin``) by index."""
    train = Path(root) / "nmnist" / "Train"
    files = sorted(train.glob("*/*.bin"), key=lambda p: p.name)
    if not files:
        sys.exit(f"benchmarks: error: {train}: no N-MNIST recordings (set SNNZOO_DATA or --data)")
    return files[:n]


def nmnist_frames(binning: dict, root: Path = DATA, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Real recordings binned with a model's binning spec: float32 ``[n, T, P, H, W]``, and
    their labels ``[n]``."""
    from snnzoo.runtime.binning import bin_from_spec
    from snnzoo.runtime.readers import read_nmnist_bin

    frames, labels = [], []
    for path in nmnist_files(root, n):
        events, sensor = read_nmnist_bin(path)
        frames.append(bin_from_spec(events, sensor, binning))
        labels.append(int(path.parent.name))
    return np.stack(frames), np.array(labels, np.int64)


def batches(frames: np.ndarray, batch: int) -> list[np.ndarray]:
    """Cut ``frames`` into full batches, cycling through the recordings if there are fewer."""
    reps = -(-batch // len(frames))
    pool = np.concatenate([frames] * reps) if reps > 1 else frames
    return [np.ascontiguousarray(pool[i:i + batch]) for i in range(0, len(pool) - batch + 1, batch)]


def _repeat(fn: Callable[[int], object], batch: int, min_time: float, first: int,
            sync: Callable[[], object] | None) -> tuple[float, int]:
    calls, start = 0, time.perf_counter()
    while True:
        fn(first + calls)
        calls += 1
        if sync is not None:
            sync()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return calls * batch / elapsed, calls


def compare(fns: dict[str, Callable[[int], object]], batch: int, min_time: float = 1.0,
            repeats: int = 3, warmup: int = 2, sync: Callable[[], object] | None = None) -> dict[str, float]:
    """Median samples/s of each ``fn(i)`` (one call = one batch; ``i`` counts calls).

    The repeats are interleaved (A B C, A B C, ...) so that load from other processes on a
    shared machine hits every contender alike. ``sync`` (e.g. ``torch.cuda.synchronize``) runs
    after every call, so asynchronous work is inside the clock."""
    done = dict.fromkeys(fns, 0)
    for name, fn in fns.items():
        for i in range(warmup):
            fn(i)
        if sync is not None:
            sync()
        done[name] = warmup
    rates: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            rate, calls = _repeat(fn, batch, min_time, done[name], sync)
            rates[name].append(rate)
            done[name] += calls
    return {name: statistics.median(r) for name, r in rates.items()}


def agreement(ref: np.ndarray, other: np.ndarray, tie: float = 1e-5) -> dict[str, float]:
    """Compare class scores ``[N, C]``: top-1 matches where ``ref``'s top-1 is unique, max |diff|.

    A top-1 is unique when it leads the runner-up by more than ``tie``: scores are mean rates
    (multiples of 1/(T·n)) summed in different orders, so equal rates can differ by rounding."""
    ref, other = np.asarray(ref, np.float64), np.asarray(other, np.float64)
    top = np.sort(ref, axis=1)
    unique = top[:, -1] - top[:, -2] > tie
    same = (ref.argmax(1) == other.argmax(1))[unique]
    return {"n": len(ref), "unique": int(unique.sum()), "top1_same": int(same.sum()),
            "max_diff": float(np.abs(ref - other).max())}


def format_agreement(a: dict[str, float]) -> str:
    return (f"top-1 identical on {a['top1_same']}/{a['unique']} samples with a unique top-1 "
            f"(of {a['n']}); max |score diff| = {a['max_diff']:.3g}")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(lines)


def fmt_rate(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_header(title: str, threads: int | None = None) -> str:
    """A markdown preamble: what ran, where, with which versions, and the command line."""
    dists = ["snnzoo", "torch", "onnxruntime", "spikingjelly", "snntorch", "numpy"]
    vers = ", ".join(f"{d} {version(d)}" for d in dists)
    cores = os.cpu_count()
    thr = f", {threads} thread{'s' if threads > 1 else ''}" if threads else ""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cmd = " ".join(["python"] + [os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])
    return (f"### {title}\n\n{stamp} · {cpu_model()}, {cores} cores{thr} · Python "
            f"{platform.python_version()} · {vers}\n\n`{cmd}`\n")
