"""``snnzoo info FILE...``: what is in event files (format, events, duration, sensor, polarity, rate)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .errors import EventFileError
from .images import describe_image
from .readers import read_events


def event_file_info(path: str | Path) -> dict[str, Any]:
    """Summary of one event file; raises `EventFileError` for a bad file.

    ``on_fraction`` = share of events with p = 1; ``event_rate_hz`` = events / duration
    (duration = last − first timestamp; None for a single instant). An image file is such an
    error too, naming what it is.
    """
    try:
        events, sensor, fmt = read_events(path)
    except EventFileError:
        image = describe_image(path)
        if image is None:
            raise
        raise EventFileError(path, f"{image}, not an event file (images are classified by "
                                   "`snnzoo predict --model <image model>`)") from None
    t0, t1 = int(events["t"][0]), int(events["t"][-1])
    n = len(events)
    return {"file": str(path), "format": fmt, "events": n, "duration_us": t1 - t0,
            "sensor_size": list(sensor), "t_start_us": t0, "t_end_us": t1,
            "on_fraction": round(float(events["p"].astype(bool).mean()), 6),
            "event_rate_hz": round(n / ((t1 - t0) * 1e-6), 3) if t1 > t0 else None}


def _text(info: dict[str, Any]) -> str:
    w, h, p = info["sensor_size"]
    rate = info["event_rate_hz"]
    if rate is None:
        rate_s = "single timestamp"
    else:
        scale, unit = next((s, u) for s, u in ((1e6, "Mev/s"), (1e3, "kev/s"), (1.0, "ev/s")) if rate >= s or s == 1.0)
        rate_s = f"{rate / scale:.3g} {unit}"
    return (f"{info['file']}: {info['format']}, {info['events']:,} events, {info['duration_us'] / 1e6:.6f} s, "
            f"sensor {w}×{h}×{p}, ON {info['on_fraction']:.1%}, {rate_s}")


@click.command("info")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: one line per file; json: one JSON object per line.")
def info_command(files: tuple[Path, ...], fmt: str) -> None:
    """Describe event files: format, events, duration, sensor size, polarity balance, event rate.

    Reads .npy/.npz, N-MNIST .bin, DVS Gesture .bs2, AEDAT 2.0 .aedat, AEDAT4 .aedat4 and
    Prophesee .raw (EVT2/EVT3) / .dat. A bad file prints `snnzoo: error: FILE: reason` on
    stderr; the others are still described and the exit status is 1.
    """
    failed = False
    for f in files:
        try:
            info = event_file_info(f)
        except EventFileError as e:
            click.echo(f"snnzoo: error: {e}", err=True)
            failed = True
            continue
        click.echo(json.dumps(info) if fmt == "json" else _text(info))
    if failed:
        raise SystemExit(1)
