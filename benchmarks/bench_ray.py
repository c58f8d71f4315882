"""``--engine ray`` vs the local engine on the 1,000 real N-MNIST recordings, side by side.

Contenders, interleaved over ``--repeats`` rounds (medians reported), all on the bundled
``nmnist_compact`` ONNX model with the same batch size:

- local, 1 thread: ``Predictor(workers=1, threads=1)``: one reader thread and one ONNX Runtime
  thread, the resources of one Ray actor — the baseline for Ray's per-file overhead;
- local, defaults: ``Predictor()`` (min(4, CPUs) reader threads, ORT's default threads);
- ray, N workers: ``RayPredictor(num_workers=N)`` on a Ray cluster (a local one started here with
  ``--cpus`` CPUs, or ``--address``); each actor has 1 CPU and 1 ORT thread.

Each contender runs a whole job (model load, or for ray the Ray Data job: actor start and model
shipping included, the cluster start not — it is printed above the table) on all files and on
the first half. Fixed costs cancel in the difference: *per-file* wall time and CPU time are
(all − half) / (files − half), the *start* is what remains of the full job. CPU time is user +
system of this process and, for ray, of all its descendants (the local cluster's GCS, raylet and
actors; with ``--address`` only the driver is counted); it depends far less than wall time on
other load. *Ray's CPU ms/file* = a ray contender's per-file CPU − that of "local, 1 thread";
*driver CPU ms/file*: the part spent in this (the driver) process, which every row passes through.
Every ray run's rows (top-10: all class scores) are checked equal to the local engine's first.

    python benchmarks/bench_ray.py [--workers 1 2] [--repeats 2] [--batch-size 32] [--address ADDR]
"""
from __future__ import annotations

import argparse
import collections
import os
import statistics
import time
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from common import DATA, machine_header, markdown_table, nmnist_files, version

TOP_K = 10  # every class score is compared


def cpu_seconds(tree: bool) -> dict[int, float]:
    """CPU seconds (user + system) used so far by this process and (``tree``) its descendants, by pid."""
    import psutil  # vendored by ray

    me, out = psutil.Process(), {}
    for proc in [me, *(me.children(recursive=True) if tree else [])]:
        try:
            t = proc.cpu_times()
            out[proc.pid] = t.user + t.system
        except psutil.Error:  # exited meanwhile
            pass
    return out


def job(files: list[str], make: Callable, tree: bool) -> dict:
    """One whole job: build the engine, predict every file; wall and CPU seconds, the rows.
    Descendants are sampled at the last row, before the job's actors exit."""
    from snnzoo.runtime.ray_engine import to_row

    cpu0, t0 = cpu_seconds(tree), time.perf_counter()
    rows = []
    for p in make().predict_files(files):
        rows.append(to_row(p))
        if len(rows) == len(files):
            cpu1, t1 = cpu_seconds(tree), time.perf_counter()
    cpu = sum(v - cpu0.get(pid, 0.0) for pid, v in cpu1.items())
    me = os.getpid()
    return {"rows": rows, "wall": t1 - t0, "cpu": cpu, "driver": cpu1[me] - cpu0[me]}


def compare(rows: list[dict], files: list[str], reference: dict[str, dict]) -> list[str]:
    """What differs between a job's rows and the reference rows for ``files`` (empty: nothing)."""
    seen = collections.Counter(r["file"] for r in rows)
    problems = [f"{f}: {k} rows" for f, k in seen.items() if k > 1]
    problems += [f"{f}: no row" for f in files if f not in seen]
    for r in rows:
        ref = reference[r["file"]]
        if r != ref:
            problems.append(f"{r['file']}: " + "; ".join(f"{k} {ref[k]!r} → {r[k]!r}" for k in ref if r[k] != ref[k]))
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="data root holding nmnist/Train")
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray cluster")
    ap.add_argument("--address", default=None, help="an existing Ray cluster instead of a local one")
    args = ap.parse_args()

    from snnzoo.runtime import Predictor
    from snnzoo.runtime.ray_engine import RayPredictor

    files = [str(f) for f in nmnist_files(args.data, args.files)]
    half = files[: len(files) // 2]
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a local cluster on 127.0.0.1
    import ray

    t0 = time.perf_counter()
    if args.address:
        ray.init(address=args.address, logging_level="WARNING")
    else:
        ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, logging_level="WARNING")
    cluster_start = time.perf_counter() - t0

    b = args.batch_size
    engines: dict[str, tuple[Callable, bool]] = {
        "local, 1 thread": (lambda: Predictor(batch_size=b, workers=1, threads=1, top_k=TOP_K), False),
        "local, defaults": (lambda: Predictor(batch_size=b, top_k=TOP_K), False)}
    for n in args.workers:
        engines[f"ray, {n} worker{'s' if n > 1 else ''}"] = (
            lambda n=n: RayPredictor(num_workers=n, batch_size=b, top_k=TOP_K), True)
    runs: dict[str, dict[str, list[dict]]] = {name: {"all": [], "half": []} for name in engines}
    with tqdm(total=args.repeats * len(engines) * 2, unit="job", leave=False) as bar:
        for _ in range(args.repeats):
            for name, (make, tree) in engines.items():
                for size, subset in (("all", files), ("half", half)):
                    bar.set_description(f"{name}, {len(subset)} files")
                    runs[name][size].append(job(subset, make, tree))
                    bar.update()

    reference = {r["file"]: r for r in runs["local, defaults"]["all"][0]["rows"]}
    mismatches = [f"{name}, {len(subset)} files, round {i + 1}: {problem}"
                  for name, sizes in runs.items() for size, subset in (("all", files), ("half", half))
                  for i, run in enumerate(sizes[size]) for problem in compare(run["rows"], subset, reference)]
    events = sum(r["events"] for r in reference.values()) / len(files)
    correct = sum(r["label"] == int(Path(r["file"]).parent.name) for r in reference.values())

    def med(name: str, size: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name][size])

    extra = len(files) - len(half)
    base_cpu = (med("local, 1 thread", "all", "cpu") - med("local, 1 thread", "half", "cpu")) / extra
    table = []
    for name in engines:
        wall, cpu = med(name, "all", "wall"), med(name, "all", "cpu")
        per_file = (wall - med(name, "half", "wall")) / extra
        cpu_file = (cpu - med(name, "half", "cpu")) / extra
        driver = (med(name, "all", "driver") - med(name, "half", "driver")) / extra
        table.append([name, f"{wall:.2f}", f"{len(files) / wall:,.0f}", f"{1 / per_file:,.0f}",
                      f"{events / per_file / 1e6:.2f}", f"{wall - per_file * len(files):.2f}",
                      f"{1e3 * cpu_file:.2f}",
                      f"{1e3 * (cpu_file - base_cpu):+.2f}" if name.startswith("ray") else "—",
                      f"{1e3 * driver:.2f}" if name.startswith("ray") else "—"])
    print(machine_header(f"Ray engine vs local engine ({len(files):,} real N-MNIST recordings)"))
    print(f"ray {version('ray')}, batch size {b}, median of {args.repeats} interleaved rounds, each job "
          f"on {len(files)} and on {len(half)} files; cluster start (ray.init): {cluster_start:.1f} s; "
          f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print(markdown_table(["engine", f"job s ({len(files)} files)", "job files/s", "per-file files/s",
                          "per-file Mevents/s", "start s", "CPU ms/file", "Ray's CPU ms/file", "driver CPU ms/file"], table))
    if mismatches:
        print("\nROWS DIFFER from the local engine's:\n" + "\n".join(f"- {m}" for m in mismatches))
        raise SystemExit(1)
    n_ray = sum(len(s["all"]) + len(s["half"]) for k, s in runs.items() if k.startswith("ray"))
    print(f"\nEvery ray job's rows (file, label, class, all 10 scores, events, error) equal the local "
          f"engine's, file by file ({n_ray} ray jobs; {len(files)} files in each full one). "
          f"{events:,.0f} events per file on average; bundled model correct on {correct}/{len(files)}.")
    ray.shutdown()


if __name__ == "__main__":
    main()
