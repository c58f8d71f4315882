"""Real vs emulated N-MNIST, side by side: the real recordings of MNIST train images
``--start`` … ``--start + n − 1`` against the emulator's streams of the same images.

    python benchmarks/emulator_fidelity.py --data-root ../shared/data --n 200 [--start 200] \
        [--contrast-sd 0.12 --timing-sd-ms 4]

Rows (mean ± sd over samples): events per sample, ON fraction, duration, spatial spread (sd of
x and y), active pixels and events per active pixel (all, then per polarity p = 0 / 1, with the
pixels of ≥ 2 events: the footprint without most background noise), the event
rate in 30 ms windows, and — paired — the correlation of per-sample event counts and the overlap
(IoU) of binary frames binned as the model sees them (T = 8). The emulator's defaults were fitted on images 0–199; ``--start 200``
measures on recordings the fit never saw. With ``--params fit.json`` a column shows the same images
emulated with those constants (e.g. ``tools/fit_emulator.py footprint``'s); with ``--contrast-sd`` /
``--timing-sd-ms`` one with domain randomisation.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import numpy as np

from snnzoo.runtime.binning import bin_events
from snnzoo.runtime.readers import read_nmnist_bin
from snnzoo.zoo.datasets.mnist import load_mnist
from snnzoo.zoo.datasets.nmnist import mnist_index
from snnzoo.zoo.emulator import SENSOR_SIZE, EmulatorParams, Randomization, emulate, load_params

WINDOW_US = 30_000
STATS = ("events", "on_fraction", "duration_ms", "x_sd", "y_sd", "active_pixels", "events_per_active_pixel",
         "active_pixels_p0", "events_per_active_pixel_p0", "pixels_2plus_events_p0",
         "active_pixels_p1", "events_per_active_pixel_p1", "pixels_2plus_events_p1")


def stream_stats(events: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Per-sample statistics of a list of event streams."""
    rows: dict[str, list[float]] = {k: [] for k in STATS}
    rates = []
    for ev in events:
        rows["events"].append(len(ev))
        rows["on_fraction"].append(ev["p"].mean())
        rows["duration_ms"].append((ev["t"][-1] - ev["t"][0]) / 1000)
        rows["x_sd"].append(ev["x"].std())
        rows["y_sd"].append(ev["y"].std())
        for suffix, sel in (("", slice(None)), ("_p0", ev["p"] == 0), ("_p1", ev["p"] == 1)):
            e = ev[sel]
            counts = np.bincount(e["y"].astype(np.int64) * SENSOR_SIZE[0] + e["x"], minlength=34 * 34)
            active = int((counts > 0).sum())
            rows["active_pixels" + suffix].append(active)
            rows["events_per_active_pixel" + suffix].append(len(e) / max(active, 1))
            if suffix:  # single-event pixels are mostly background noise: this is the digit's footprint
                rows["pixels_2plus_events" + suffix].append(int((counts >= 2).sum()))
        rates.append(np.bincount(np.minimum(ev["t"] // WINDOW_US, 10), minlength=11) / (WINDOW_US / 1000))
    out = {k: np.asarray(v, float) for k, v in rows.items()}
    out["rate"] = np.asarray(rates)
    return out


def frame_iou(a: list[np.ndarray], b: list[np.ndarray], steps: int = 8) -> np.ndarray:
    """Per-sample IoU of binary ``[T, 2, 34, 34]`` frames of paired streams."""
    fa = np.stack([bin_events(e, SENSOR_SIZE, n_time_bins=steps, mode="binary") for e in a])
    fb = np.stack([bin_events(e, SENSOR_SIZE, n_time_bins=steps, mode="binary") for e in b])
    return (fa * fb).sum((1, 2, 3, 4)) / np.maximum(np.maximum(fa, fb).sum((1, 2, 3, 4)), 1)


def _ms(v: np.ndarray, fmt: str) -> str:
    return f"{format(v.mean(), fmt)} ± {format(v.std(), fmt)}"


@click.command()
@click.option("--data-root", required=True, type=click.Path(file_okay=False),
              help="Folder holding nmnist/Train/<label>/<idx>.bin and mnist/*.gz.")
@click.option("--n", type=int, default=200, show_default=True, help="Paired samples.")
@click.option("--start", type=int, default=0, show_default=True, help="First MNIST train index (0–999).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--contrast-sd", type=float, default=0.0, show_default=True,
              help="Also emulate with this per-sample sensitivity spread (Randomization.contrast_sd).")
@click.option("--timing-sd-ms", type=float, default=0.0, show_default=True,
              help="Also emulate with this saccade timing spread (Randomization.timing_sd_us / 1000).")
@click.option("--params", "params_file", type=click.Path(exists=True, dir_okay=False),
              help="Also emulate with these EmulatorParams overrides (JSON; a column named after the file).")
def main(data_root: str, n: int, start: int, seed: int, contrast_sd: float, timing_sd_ms: float,
         params_file: str | None) -> None:
    root = Path(data_root)
    files = {mnist_index(f): f for f in (root / "nmnist" / "Train").glob("*/*.bin")}
    wanted = list(range(start, start + n))
    if not files or any(i not in files for i in wanted):
        click.echo(f"snnzoo: error: {root / 'nmnist' / 'Train'}: recordings of MNIST train {start}–{start + n - 1} "
                   "not all present", err=True)
        sys.exit(2)
    images, labels = load_mnist(root / "mnist", "train")
    real = [read_nmnist_bin(files[i])[0] for i in wanted]
    assert all(int(files[i].parent.name) == labels[i] for i in wanted), "recording labels disagree with MNIST"
    columns = {"real": real}
    rand = Randomization(contrast_sd, timing_sd_ms * 1000)
    runs = [("emulated", EmulatorParams(), None)]
    if params_file:
        try:
            runs.append((Path(params_file).stem, load_params(params_file), None))
        except ValueError as e:
            click.echo(f"snnzoo: error: {e}", err=True)
            sys.exit(2)
    if rand.active:
        runs.append(("randomised", EmulatorParams(), rand))
    for name, params, r in runs:
        t0 = time.perf_counter()
        columns[name] = emulate(images[wanted], seed=seed, keys=wanted, params=params, randomization=r)
        elapsed = time.perf_counter() - t0
        click.echo(f"{name}: {n} streams in {elapsed:.2f} s ({1000 * elapsed / n:.1f} ms per digit)")
    stats = {name: stream_stats(ev) for name, ev in columns.items()}
    fmt = {"events": ".0f", "duration_ms": ".1f", "active_pixels": ".0f", "active_pixels_p0": ".0f",
           "active_pixels_p1": ".0f", "pixels_2plus_events_p0": ".0f", "pixels_2plus_events_p1": ".0f"}
    extra = f"; randomised: {rand}" if rand.active else ""
    click.echo(f"\nN-MNIST real vs emulated: MNIST train {start}–{start + n - 1} (n = {n}, paired), "
               f"emulation seed {seed}{extra}; mean ± sd over samples\n")
    click.echo(f"{'statistic':28s}" + "".join(f" {name:>20s}" for name in columns))
    for k in STATS:
        f = fmt.get(k, ".2f")
        click.echo(f"{k:28s}" + "".join(f" {_ms(st[k], f):>20s}" for st in stats.values()))
    click.echo(f"\nevent rate (events/ms) per {WINDOW_US // 1000} ms window:")
    for w in range(stats["real"]["rate"].shape[1]):
        lo = w * WINDOW_US // 1000
        label = f"  {lo:3d}–{lo + WINDOW_US // 1000:3d} ms" if w < stats["real"]["rate"].shape[1] - 1 else f"  ≥{lo:3d} ms"
        click.echo(f"{label:28s}" + "".join(f" {_ms(st['rate'][:, w], '.2f'):>20s}" for st in stats.values()))
    click.echo("\npaired with the real recordings:")
    for name, ev in list(columns.items())[1:]:
        iou, shuffled = frame_iou(real, ev), frame_iou(real, ev[1:] + ev[:1])
        corr = np.corrcoef(stats["real"]["events"], stats[name]["events"])[0, 1]
        click.echo(f"  {name}: corr(events) {corr:.2f}; frame IoU (T=8, binary) {_ms(iou, '.3f')} "
                   f"(same digit), {_ms(shuffled, '.3f')} (mismatched digits, for scale)")


if __name__ == "__main__":
    main()
