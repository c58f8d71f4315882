"""Windowed prediction over long streams: events/s side by side, and peak memory on a 1-GB EVT3.

1. **Throughput** on one long real stream: the N-MNIST recordings of ``--recordings`` (real,
   ``$SNNZOO_DATA/nmnist``) written one after the other (each shifted to start 50 ms after the
   previous one ends) into one ``.npy``; windows ``--window``/``--stride`` with the default model.
   Contenders, interleaved over ``--repeats`` rounds (median wall time; events/s = events in the
   file / time):

   - ``predict_windows``: `Predictor.predict_windows` (chunked reading, windows batched ``--batch``
     per session call, binned by one `bin_batch` call per batch, reading in a second thread);
   - ``predict_windows, batch 1``: the same with one window per session call;
   - ``unrolled graph per window``: the file read whole, then for each window its events cut out
     and `Predictor.predict_events` (bin + one session call of the unrolled graph), i.e. re-running
     the model on every window as if it were a file.

   All three are checked to give the same rows first.

2. **Peak memory** (``ru_maxrss`` of the ``snnzoo predict`` process, from ``wait4``): a synthetic
   EVT3 file of ``--sizes`` MB (34×34 sensor in its header, ``--rate`` events/s of uniformly random
   pixels and polarities, single-event ADDR_X words, TIME_HIGH wraps every 16.8 s) is written under
   ``--tmp``, predicted with ``snnzoo predict FILE --window … --stride … --format csv``, and deleted;
   for the smallest size also ``read_events`` (the whole file in memory) for contrast.

    python benchmarks/bench_windows.py [--recordings 1000] [--sizes 64 1024] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, nmnist_files  # noqa: E402

from snnzoo.runtime import Predictor  # noqa: E402
from snnzoo.runtime.readers import read_events, write_npy  # noqa: E402
from snnzoo.runtime.windows import parse_duration  # noqa: E402


def long_stream(files: list[Path], gap_us: int = 50_000) -> np.ndarray:
    parts, end = [], 0
    for f in tqdm(files, desc="reading", leave=False):
        ev = read_events(f)[0]
        ev["t"] += end - ev["t"][0]
        end = int(ev["t"][-1]) + gap_us
        parts.append(ev)
    return np.concatenate(parts)


def per_window(predictor: Predictor, path: Path, window: int, stride: int) -> list[tuple]:
    """The baseline: whole file in memory, each window cut out and predicted on its own."""
    events = read_events(path, sensor_size=predictor.info.sensor_size)[0]
    t, rows, a = events["t"], [], int(events["t"][0])
    while True:
        lo, hi = np.searchsorted(t, [a, a + window])
        if hi > lo:
            r = predictor.predict_events(events[lo:hi])
            rows.append((a, r.label, r.score))
        else:
            rows.append((a, None, None))
        if a + window > t[-1]:
            return rows
        a += stride


def throughput(args: argparse.Namespace) -> None:
    files = nmnist_files(args.data, args.recordings)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = write_npy(Path(tmp) / "long.npy", long_stream(files))
        n_events = len(np.load(path, mmap_mode="r"))
        window, stride = parse_duration(args.window), parse_duration(args.stride)
        batched = Predictor(batch_size=args.batch, workers=1)
        single = Predictor(batch_size=1, workers=1)
        fns = {
            f"predict_windows (batch {args.batch})":
                lambda: [(r.t_start_us, r.label, r.score) for r in batched.predict_windows([path], window, stride)],
            "predict_windows, batch 1":
                lambda: [(r.t_start_us, r.label, r.score) for r in single.predict_windows([path], window, stride)],
            "unrolled graph per window (predict_events)": lambda: per_window(single, path, window, stride),
        }
        outs = {name: fn() for name, fn in fns.items()}  # warm-up and agreement
        ref = next(iter(outs.values()))
        for name, out in outs.items():
            if out != ref:
                raise SystemExit(f"{name} differs from the batched windows")
        times: dict[str, list[float]] = {name: [] for name in fns}
        for _ in tqdm(range(args.repeats), desc="rounds", leave=False):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    print(f"\n### Windowed prediction, {len(files)} real N-MNIST recordings as one stream "
          f"({n_events:,} events, {len(ref):,} windows of {args.window} every {args.stride}); "
          f"nmnist_compact (ONNX Runtime, CPU); median of {args.repeats} interleaved rounds\n")
    print("| contender | time [s] | events/s | windows/s | vs per-window |\n|---|---|---|---|---|")
    base = statistics.median(times["unrolled graph per window (predict_events)"])
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"| {name} | {m:.2f} | {n_events / m / 1e6:.2f} M | {len(ref) / m:,.0f} | {base / m:.1f}× |")


def write_evt3(path: Path, size_mb: int, rate: float, seed: int = 0) -> int:
    """A synthetic EVT3 stream of about ``size_mb`` MB on a 34×34 sensor; returns its events."""
    rng = np.random.default_rng(seed)
    header = b"% evt 3.0\n% geometry 34x34\n% integrator_name snnzoo-benchmark\n"
    target, n_events, t_end, last_high = size_mb << 20, 0, 0, -1
    block = 1 << 20
    with open(path, "wb") as f, tqdm(total=target, unit="B", unit_scale=True, desc="writing EVT3", leave=False) as bar:
        f.write(header)
        written = len(header)
        while written < target:
            t = t_end + np.cumsum(rng.exponential(1e6 / rate, block)).astype(np.int64)
            t_end = int(t[-1])
            x, y, p = rng.integers(0, 34, block), rng.integers(0, 34, block), rng.integers(0, 2, block)
            high, low = (t >> 12) & 0xFFF, t & 0xFFF
            new_high = np.r_[high[0] != last_high, high[1:] != high[:-1]]
            new_low = np.r_[True, t[1:] != t[:-1]]
            last_high = int(high[-1])
            words = np.stack([0x8000 | high, 0x6000 | low, y, 0x2000 | p << 11 | x], 1)
            keep = np.stack([new_high, new_low, np.ones(block, bool), np.ones(block, bool)], 1)
            w = words[keep][:(target - written) // 2].astype("<u2")
            data = w.tobytes()
            f.write(data)
            written += len(data)
            n_events += int(np.count_nonzero(w >> 12 == 2))
            bar.update(len(data))
    return n_events


_HWM = ("import atexit, os, re, runpy, sys\n"
        "def hwm():\n"
        "    with open(os.environ['HWM_FILE'], 'w') as f:\n"
        "        f.write(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1))\n"
        "atexit.register(hwm)\n"
        "if sys.argv[1] == '-c':\n"
        "    exec(sys.argv[2])\n"
        "else:\n"
        "    sys.argv = sys.argv[1:]\n"
        "    runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n")


def peak_rss_mb(module: str, *args: str) -> tuple[float, float, int]:
    """``(peak RSS in MB, wall seconds, stdout lines)`` of ``python -m module args`` (or ``-c code``) in a child
    process: its own ``VmHWM`` (high-water resident set of its address space), read at exit.
    (``ru_maxrss`` of a child is no use here: Linux carries the parent's high-water mark into it.)"""
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as hwm:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _HWM, module, *args], stdout=out, stderr=subprocess.PIPE,
                              env={**os.environ, "HWM_FILE": hwm.name})
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{module} {' '.join(args)} failed: {proc.stderr.decode().strip()}")
        out.seek(0)
        return int(hwm.read()) / 1024, wall, out.read().count(b"\n")


def memory(args: argparse.Namespace) -> None:
    rows = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            path = Path(tmp) / f"synthetic_{size}MB.raw"
            n_events = write_evt3(path, size, args.rate)
            mb = path.stat().st_size / 2**20
            rss, wall, lines = peak_rss_mb("snnzoo.cli", "predict", str(path), "--window", args.window,
                                           "--stride", args.stride, "--format", "csv")
            rows.append((f"`snnzoo predict --window {args.window} --stride {args.stride}` (chunked)",
                         mb, n_events, rss, wall, f"{lines - 1:,} windows"))
            if size == min(args.sizes):
                rss, wall, _ = peak_rss_mb("-c", f"from snnzoo.runtime.readers import read_events\n"
                                                 f"read_events({str(path)!r})")
                rows.append(("`read_events` (the whole file in memory, as before)", mb, n_events, rss, wall, ""))
    sample = Path(__file__).resolve().parents[1] / "runtime" / "samples" / "nmnist_00001_label5.npy"
    ref_rss, ref_wall, _ = peak_rss_mb("snnzoo.cli", "predict", str(sample))
    print(f"\n### Peak memory, synthetic EVT3 on a 34×34 sensor ({args.rate / 1e6:g} Mevents/s), "
          "nmnist_compact; files under a temporary folder, deleted after\n")
    print("| run | file [MB] | events | peak RSS [MB] | wall [s] | rows |\n|---|---|---|---|---|---|")
    for name, mb, n, rss, wall, note in rows:
        print(f"| {name} | {mb:,.0f} | {n:,} | {rss:,.0f} | {wall:.1f} | {note} |")
    print(f"| `snnzoo predict` on one 4,677-event sample (reference) | 0 | 4,677 | {ref_rss:,.0f} | {ref_wall:.1f} | |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="data root holding nmnist/Train")
    ap.add_argument("--recordings", type=int, default=1000, help="real recordings in the long stream")
    ap.add_argument("--window", default="300ms")
    ap.add_argument("--stride", default="100ms")
    ap.add_argument("--batch", type=int, default=64, help="windows per session call")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="*", default=[64, 1024], help="synthetic EVT3 sizes in MB")
    ap.add_argument("--rate", type=float, default=2e6, help="synthetic events per second")
    ap.add_argument("--tmp", default="/tmp", help="folder for the temporary files")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    print(f"python {' '.join(sys.argv)}\nCPU: {os.cpu_count()} cores, shared with a training run (timings under load)")
    if not args.skip_throughput:
        throughput(args)
    if args.sizes:
        memory(args)


if __name__ == "__main__":
    main()
