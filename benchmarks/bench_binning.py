"""Events → frames: our batched numpy and torch binning vs tonic's ``ToFrame``, side by side.

On the real N-MNIST recordings (``$SNNZOO_DATA/nmnist`` or ``../shared/data/nmnist``): every
method bins all recordings; the outputs are checked to agree first (tonic corrected for its
documented difference: it drops the events at ``t ≥ t0 + T·window``; for ``mode="binary"``, the
default model's spec, its counts clipped to 1). Times are the median of
``--repeats`` interleaved rounds (wall clock, and the process's CPU time summed over its threads);
events/s = all events / the wall time. ``bin_batch (numpy, N threads)`` maps batches of
``--batch // N`` recordings over a pool of ``--threads`` threads, as `Predictor` bins files in
its worker threads (numpy releases the GIL in the heavy loops); every other contender uses one core.

    python benchmarks/bench_binning.py [--root DIR] [--batch 256] [--repeats 7] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import tonic.transforms
from tqdm import tqdm

from snnzoo.runtime.binning import bin_batch
from snnzoo.runtime.binning_torch import bin_batch_torch
from snnzoo.runtime.readers import read_events

SENSOR = (34, 34, 2)
REPO = Path(__file__).resolve().parents[1]


def tonic_frames(events: list[np.ndarray], cfg: dict) -> list[np.ndarray]:
    """tonic's ``ToFrame``; ``mode="binary"`` (which tonic lacks) as its counts clipped to 1."""
    to_frame = tonic.transforms.ToFrame(sensor_size=SENSOR, n_time_bins=cfg["n_time_bins"])
    if cfg.get("mode") == "binary":
        return [np.minimum(to_frame(e), 1) for e in events]
    return [to_frame(e) for e in events]


def batched(fn, events: list[np.ndarray], batch: int, cfg: dict) -> list:
    return [fn(events[i:i + batch], SENSOR, **cfg) for i in range(0, len(events), batch)]


def check_agreement(events: list[np.ndarray], cfg: dict, batch: int, devices: list[str]) -> None:
    """numpy == tonic (+ its dropped events) == torch on every device, for all recordings."""
    steps = cfg["n_time_bins"]
    ours = np.concatenate(batched(bin_batch, events, batch, cfg))
    for ev, frames, ref in zip(events, ours, tonic_frames(events, cfg)):
        ref = ref.astype(np.float32)
        t0, t1 = ev["t"][0], ev["t"][-1]
        late = ev[ev["t"] >= t0 + steps * max((t1 - t0) // steps, 1)]
        np.add.at(ref, (steps - 1, late["p"].astype(int), late["y"], late["x"]), 1)
        if cfg.get("mode") == "binary":
            np.minimum(ref, 1, out=ref)
        if not np.array_equal(frames, ref):
            raise SystemExit("numpy binning differs from tonic's ToFrame")
    for dev in devices:
        got = torch.cat([bin_batch_torch(events[i:i + batch], SENSOR, device=dev, **cfg).cpu()
                         for i in range(0, len(events), batch)])
        if not np.array_equal(got.numpy(), ours):
            raise SystemExit(f"torch binning on {dev} differs from numpy")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_root = Path(os.environ.get("SNNZOO_DATA", REPO.parent / "shared" / "data")) / "nmnist"
    ap.add_argument("--root", type=Path, default=default_root, help="N-MNIST root with Train/<digit>/*.bin")
    ap.add_argument("--batch", type=int, default=256, help="streams per bin_batch call")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--torch-threads", type=int, default=1, help="torch CPU threads (1: no oversubscription)")
    ap.add_argument("--threads", type=int, default=2, help="threads of the multi-threaded numpy contender")
    args = ap.parse_args()
    files = sorted(args.root.glob("Train/*/*.bin"))
    if not files:
        raise SystemExit(f"no N-MNIST recordings under {args.root / 'Train'}")
    events = [read_events(f)[0] for f in tqdm(files, desc="reading", leave=False)]
    n_events = sum(len(e) for e in events)
    torch.set_num_threads(args.torch_threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    pool, sub = ThreadPoolExecutor(args.threads), max(1, args.batch // args.threads)
    print(f"{len(events)} real N-MNIST recordings, {n_events:,} events; batch {args.batch}; "
          f"median of {args.repeats} rounds; torch {torch.__version__}, {args.torch_threads} CPU thread(s)")
    for cfg in ({"n_time_bins": 10}, {"n_time_bins": 5}, {"n_time_bins": 8, "mode": "binary"}):
        check_agreement(events, cfg, args.batch, devices)
        threaded = f"snnzoo bin_batch (numpy, {args.threads} threads)"
        methods = {"tonic ToFrame (per recording)": lambda: tonic_frames(events, cfg),
                   "snnzoo bin_batch (numpy)": lambda: batched(bin_batch, events, args.batch, cfg),
                   threaded: lambda: list(pool.map(lambda i: bin_batch(events[i:i + sub], SENSOR, **cfg),
                                                   range(0, len(events), sub)))}
        if not np.array_equal(np.concatenate(methods[threaded]()),
                              np.concatenate(methods["snnzoo bin_batch (numpy)"]())):
            raise SystemExit("threaded numpy binning differs from numpy")
        for dev in devices:
            methods[f"snnzoo bin_batch_torch ({dev})"] = (
                lambda dev=dev: (batched(lambda b, s, **k: bin_batch_torch(b, s, device=dev, **k),
                                         events, args.batch, cfg), sync()))
        times: dict[str, list[float]] = {name: [] for name in methods}
        cpu: dict[str, list[float]] = {name: [] for name in methods}
        for name, fn in methods.items():  # warm-up
            fn()
        for _ in range(args.repeats):
            for name, fn in methods.items():
                t, c = time.perf_counter(), time.process_time()
                fn()
                times[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)
        base = statistics.median(times["tonic ToFrame (per recording)"])
        base_cpu = statistics.median(cpu["tonic ToFrame (per recording)"])
        print(f"\n{cfg} (outputs agree)\n\n| method | wall [ms] | Mevents/s | vs tonic (wall) | CPU [ms] | vs tonic (CPU) |"
              "\n|---|---|---|---|---|---|")
        for name, ts in times.items():
            m, c = statistics.median(ts), statistics.median(cpu[name])
            print(f"| {name} | {m * 1e3:.1f} | {n_events / m / 1e6:.1f} | {base / m:.1f}× | {c * 1e3:.1f} | {base_cpu / c:.1f}× |")


if __name__ == "__main__":
    main()
