"""``snnzoo bench``: throughput of a model on this machine, in samples/s and events/s.

Input: the real N-MNIST recordings in ``runtime/samples`` when the model takes their 34×34×2
sensor; otherwise synthetic streams (uniform x, y, p; sorted uniform t over 300 ms; 4,000 events)
on the model's sensor. The output says which. Two stages are timed, each for ``--seconds``:
- ``inference``: pre-binned frames, the batch repeated — the session alone;
- ``end-to-end``: :meth:`Predictor.predict_files` over the files, cycled — read, validate, bin,
  infer, with reading and binning overlapping inference.
"""
from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from ..errors import SnnzooError, one_line
from .errors import ModelError
from .predictor import Predictor
from .readers import read_events

SAMPLES = Path(__file__).parent / "samples"


def synthetic_events(sensor: tuple[int, int, int], n: int = 4000, duration_us: int = 300_000,
                     seed: int = 0) -> np.ndarray:
    from .events import make_events

    rng = np.random.default_rng(seed)
    w, h, p = sensor
    return make_events(rng.integers(0, w, n), rng.integers(0, h, n),
                       np.sort(rng.integers(0, duration_us, n)), rng.integers(0, p, n))


def bench_inputs(predictor: Predictor, workdir: Path) -> tuple[list[Path], str]:
    """Event files to benchmark on, and a description of them."""
    files = sorted(SAMPLES.glob("*.npy"))
    if files and tuple(predictor.info.sensor_size) == (34, 34, 2):
        return files, f"{len(files)} real N-MNIST recordings from {SAMPLES}"
    files = []
    for i in range(8):
        files.append(workdir / f"synthetic{i}.npy")
        np.save(files[-1], synthetic_events(predictor.info.sensor_size, seed=i))
    w, h, p = predictor.info.sensor_size
    return files, f"{len(files)} synthetic streams of 4000 uniform random events on {w}x{h}x{p}"


def time_inference(predictor: Predictor, frames: np.ndarray, seconds: float) -> tuple[int, float]:
    """(samples, seconds) of repeated ``predict_frames`` on one batch, after one warm-up call."""
    predictor.predict_frames(frames)
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        predictor.predict_frames(frames)
        n += len(frames)
    return n, elapsed


def time_end_to_end(predictor: Predictor, files: list[Path], seconds: float) -> tuple[int, int, float]:
    """(samples, events, seconds) of ``predict_files`` over ``files`` cycled, after one warm-up pass."""
    list(predictor.predict_files(files))
    n = events = 0
    start = time.perf_counter()
    for r in predictor.predict_files(itertools.cycle(files)):
        if not r.ok:
            raise click.ClickException(f"{r.file}: {r.error}")
        n, events = n + 1, events + r.events
        if n % predictor.batch_size == 0 and time.perf_counter() - start >= seconds:
            break  # results come a batch at a time: stop at a batch boundary
    return n, events, time.perf_counter() - start


@click.command("bench")
@click.option("--model", "-m", default=None, metavar="ID|PATH.onnx|CHECKPOINT_DIR",
              help="As for predict [default: the bundled N-MNIST model].")
@click.option("--backend", type=click.Choice(["onnxruntime", "torch"]), default="onnxruntime",
              show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--seconds", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Duration of each timed stage.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Reader/binner threads of the end-to-end stage [default: min(4, CPUs)].")
def bench_command(model: str | None, backend: str, device: str, batch_size: int, seconds: float,
                  workers: int | None) -> None:
    """Measure samples/s and events/s of a model (inference alone, and files end to end)."""
    try:
        predictor = Predictor(model, backend=backend, device=device, batch_size=batch_size, workers=workers)
    except SnnzooError:
        raise
    except Exception as e:  # whatever else the model or device raise: one line, no traceback
        raise ModelError(one_line(e) or type(e).__name__) from None
    if predictor.info.image is not None:
        raise ModelError(f"{predictor.info.name} is an image model; bench measures event-stream models")
    with tempfile.TemporaryDirectory() as tmp:
        files, what = bench_inputs(predictor, Path(tmp))
        streams = [read_events(f, sensor_size=predictor.info.sensor_size)[0] for f in files]
        pick = np.arange(batch_size) % len(streams)
        frames = np.stack([predictor.bin(s) for s in streams])[pick]
        per_sample = float(np.mean([len(streams[i]) for i in pick]))
        info = predictor.info
        click.echo(f"model {info.name}: backend {backend} on {predictor.device}, batch {batch_size}, "
                   f"T={info.time_steps}")
        click.echo(f"input: {what}, {per_sample:.0f} events/sample in the inference batch")
        n, dt = time_inference(predictor, frames, seconds)
        n2, ev2, dt2 = time_end_to_end(predictor, files, seconds)
    click.echo(f"{'stage':12s} {'samples/s':>12s} {'events/s':>12s} {'samples':>9s} {'seconds':>8s}")
    click.echo(f"{'inference':12s} {n / dt:12.1f} {n * per_sample / dt:12.4g} {n:9d} {dt:8.2f}")
    click.echo(f"{'end-to-end':12s} {n2 / dt2:12.1f} {ev2 / dt2:12.4g} {n2:9d} {dt2:8.2f}")
