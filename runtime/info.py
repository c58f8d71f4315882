"""``snnzoo info FILE...``: what is in event files (format, events, duration, sensor, polarity,
rate), read chunk by chunk (`EventStream`), so any length fits in memory; ``--histogram``
draws the events over time per polarity and the accumulated frame into a PNG."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from ..errors import report
from .errors import EventFileError
from .images import image_not_events
from .readers import EventStream

HISTOGRAM_BINS = 2048  # at most this many time bins; their width doubles as a file turns out longer


@dataclass
class EventSummary:
    """What one pass over a stream accumulates: counts, time span, ON events, and for the
    histogram the events per polarity in time bins ``[t_start + k·bin_us, … + bin_us)`` and
    the accumulated frame ``[P, H, W]`` (events per pixel and polarity)."""

    file: str
    format: str = ""
    sensor: tuple[int, int, int] = (1, 1, 2)
    events: int = 0
    on: int = 0
    t_start: int = 0
    t_end: int = 0
    bin_us: int = 1
    per_bin: np.ndarray = field(default_factory=lambda: np.zeros((2, HISTOGRAM_BINS), np.int64))
    frame: np.ndarray = field(default_factory=lambda: np.zeros((2, 1, 1), np.int64))

    def add(self, ev: np.ndarray) -> None:
        t, p = ev["t"], ev["p"].astype(np.int64)
        if self.events == 0:
            self.t_start = int(t[0])
        self.events += len(ev)
        self.on += int(np.count_nonzero(p))
        self.t_end = int(t[-1])
        while (self.t_end - self.t_start) // self.bin_us >= HISTOGRAM_BINS:  # merge bin pairs
            self.per_bin = np.pad(self.per_bin.reshape(2, -1, 2).sum(-1), ((0, 0), (0, HISTOGRAM_BINS // 2)))
            self.bin_us *= 2
        k = (t - self.t_start) // self.bin_us
        self.per_bin += np.bincount(p * HISTOGRAM_BINS + k, minlength=2 * HISTOGRAM_BINS).reshape(2, -1)
        x, y = ev["x"].astype(np.int64), ev["y"].astype(np.int64)
        _, h, w = self.frame.shape
        if x.max() >= w or y.max() >= h:
            h, w = max(h, int(y.max()) + 1), max(w, int(x.max()) + 1)
            self.frame = np.pad(self.frame, ((0, 0), (0, h - self.frame.shape[1]), (0, w - self.frame.shape[2])))
        self.frame += np.bincount((p * h + y) * w + x, minlength=2 * h * w).reshape(2, h, w)


def scan_events(path: str | Path) -> EventSummary:
    """One chunked pass over an event file; raises `EventFileError` for a bad file (an image
    file names what it is)."""
    try:
        stream = EventStream(path)
        summary = EventSummary(str(path), stream.format)
        for chunk in stream:
            summary.add(chunk)
    except EventFileError:
        error = image_not_events(path, " (images are classified by `snnzoo predict --model <image model>`)")
        if error is None:
            raise
        raise error from None
    summary.sensor = stream.sensor
    return summary


def event_file_info(path: str | Path, summary: EventSummary | None = None) -> dict[str, Any]:
    """Summary of one event file; raises `EventFileError` for a bad file.

    ``on_fraction`` = share of events with p = 1; ``event_rate_hz`` = events / duration
    (duration = last − first timestamp; None for a single instant). An image file is such an
    error too, naming what it is.
    """
    s = summary or scan_events(path)
    t0, t1, n = s.t_start, s.t_end, s.events
    return {"file": str(path), "format": s.format, "events": n, "duration_us": t1 - t0,
            "sensor_size": list(s.sensor), "t_start_us": t0, "t_end_us": t1,
            "on_fraction": round(s.on / n, 6),
            "event_rate_hz": round(n / ((t1 - t0) * 1e-6), 3) if t1 > t0 else None}


def plot_histogram(s: EventSummary, png: str | Path) -> Path:
    """Left: events/s over time, ON and OFF (bins of ``bin_us``, at most 2,048 over the file).
    Right: the accumulated frame, ON counts in red and OFF in blue, each divided by its 99.5th
    percentile of non-zero pixels (so a few hot pixels do not hide the scene), clipped to 1 and
    square-rooted (dim regions stay visible)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_bins = int((s.t_end - s.t_start) // s.bin_us) + 1
    t = (np.arange(n_bins) * s.bin_us) / 1e6
    w, h, _ = s.sensor
    frame = np.zeros((2, h, w))
    frame[:, :s.frame.shape[1], :s.frame.shape[2]] = s.frame
    rgb = np.zeros((h, w, 3))
    for channel, pol in ((0, 1), (2, 0)):
        nz = frame[pol][frame[pol] > 0]
        if len(nz):
            rgb[..., channel] = np.sqrt(np.clip(frame[pol] / np.percentile(nz, 99.5), 0, 1))
    fig, (ax_t, ax_f) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1.6, 1]})
    for pol, color, name in ((1, "tab:red", "ON"), (0, "tab:blue", "OFF")):
        ax_t.step(t, s.per_bin[pol, :n_bins] / (s.bin_us * 1e-6), where="post", color=color, lw=0.9,
                  label=f"{name} ({int(s.per_bin[pol].sum()):,})")
    ax_t.set(xlabel=f"time since the first event [s] (bins of {s.bin_us / 1e3:g} ms)", ylabel="events/s",
             title=f"{Path(s.file).name}: {s.events:,} events, {(s.t_end - s.t_start) / 1e6:.3f} s")
    ax_t.legend(loc="upper right")
    ax_f.imshow(rgb, interpolation="nearest")
    ax_f.set(title=f"accumulated frame {w}×{h} (ON red, OFF blue)", xticks=[], yticks=[])
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return Path(png)


def _text(info: dict[str, Any]) -> str:
    w, h, p = info["sensor_size"]
    rate = info["event_rate_hz"]
    if rate is None:
        rate_s = "single timestamp"
    else:
        scale, unit = next((s, u) for s, u in ((1e6, "Mev/s"), (1e3, "kev/s"), (1.0, "ev/s")) if rate >= s or s == 1.0)
        rate_s = f"{rate / scale:.3g} {unit}"
    return (f"{info['file']}: {info['format']}, {info['events']:,} events, {info['duration_us'] / 1e6:.6f} s, "
            f"sensor {w}×{h}×{p}, ON {info['on_fraction']:.1%}, {rate_s}"
            + (f"; histogram {info['histogram']}" if "histogram" in info else ""))


@click.command("info")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: one line per file; json: one JSON object per line.")
@click.option("--histogram", type=click.Path(path_type=Path), default=None, metavar="PNG|DIR",
              help="Draw events over time per polarity and the accumulated frame: into this .png "
                   "(one file), or into DIR/<file name>.png for each file.")
def info_command(files: tuple[Path, ...], fmt: str, histogram: Path | None) -> None:
    """Describe event files: format, events, duration, sensor size, polarity balance, event rate.

    Reads .npy/.npz, N-MNIST .bin, DVS Gesture .bs2, AEDAT 2.0 .aedat, AEDAT4 .aedat4 and
    Prophesee .raw (EVT2/EVT3) / .dat, chunk by chunk. A bad file prints
    `snnzoo: error: FILE: reason` on stderr; the others are still described and the exit status is 1.
    """
    single_png = histogram is not None and histogram.suffix.lower() == ".png"
    if single_png and len(files) > 1:
        raise click.UsageError("--histogram FILE.png takes one input file; give a folder for several")
    failed = False
    for f in files:
        try:
            summary = scan_events(f)
        except EventFileError as e:
            report(e)
            failed = True
            continue
        info = event_file_info(f, summary)
        if histogram is not None:
            png = histogram if single_png else histogram / f"{Path(f).name}.png"
            png.parent.mkdir(parents=True, exist_ok=True)
            info["histogram"] = str(plot_histogram(summary, png))
        click.echo(json.dumps(info) if fmt == "json" else _text(info))
    if failed:
        raise SystemExit(1)
