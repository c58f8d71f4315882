"""``snnzoo predict``: classify event files — or image files, with an image model — using an
exported model (ONNX Runtime by default).

Inputs are files, folders (searched recursively for the model's kind of file: event files, or
images for an image model) or glob patterns. Each failed
input prints ``snnzoo: error: FILE: reason`` on stderr and the others are still predicted; the
exit status is 1 if any input failed, 2 for usage errors.
"""
from __future__ import annotations

import csv
import json
import sys

import click

from ..errors import SnnzooError, one_line, report
from .errors import ModelError
from .inputs import expand_inputs
from .predictor import Prediction, Predictor


class _Writer:
    """Writes predictions as they arrive: an aligned table, JSON lines or CSV."""

    def __init__(self, fmt: str, top_k: int, width: int, windows: bool = False) -> None:
        self.fmt, self.top_k, self.width = fmt, top_k, max(width, 4)
        self.windows = windows  # rows carry t_start_us, t_end_us (``--window``)
        self.csv = csv.writer(sys.stdout, lineterminator="\n") if fmt == "csv" else None

    def header(self) -> None:
        span = f"  {'t_start_us':>12s}  {'t_end_us':>12s}" if self.windows else ""
        if self.fmt == "table":
            click.echo(f"{'file':{self.width}s}{span}  {'class':>8s}  {'score':>6s}  top-{self.top_k}")
        elif self.fmt == "csv":
            ranked = [f"top{i}_{c}" for i in range(1, self.top_k + 1) for c in ("label", "class", "score")]
            self.csv.writerow(["file", *(["t_start_us", "t_end_us"] if self.windows else []),
                               "label", "class", "score", "events", *ranked])

    def row(self, r: Prediction) -> None:
        if self.windows and r.cls is None:  # a window without events: no label
            self._empty_window(r)
        elif self.fmt == "json":
            click.echo(json.dumps(r.to_dict()))
        elif self.fmt == "csv":
            self.csv.writerow([r.file, *([r.t_start_us, r.t_end_us] if self.windows else []),
                               r.label, r.cls, f"{r.score:.6f}", r.events,
                               *[v for lab, c, s in r.topk for v in (lab, c, f"{s:.6f}")]])
        else:
            ranked = "  ".join(f"{c}:{s:.3f}" for _, c, s in r.topk)
            click.echo(f"{r.file:{self.width}s}{self._span(r)}  {r.cls:>8s}  {r.score:6.3f}  {ranked}")

    def _span(self, r: Prediction) -> str:
        return f"  {r.t_start_us:12d}  {r.t_end_us:12d}" if self.windows else ""

    def _empty_window(self, r: Prediction) -> None:
        if self.fmt == "json":
            click.echo(json.dumps(r.to_dict()))
        elif self.fmt == "csv":
            self.csv.writerow([r.file, r.t_start_us, r.t_end_us, "", "", "", 0, *[""] * (3 * self.top_k)])
        else:
            click.echo(f"{r.file:{self.width}s}{self._span(r)}  {'-':>8s}  {'-':>6s}  (no events)")


@click.command("predict")
@click.argument("inputs", nargs=-1, required=True, metavar="FILE|DIR|GLOB...")
@click.option("--model", "-m", default=None, metavar="ID|hf-hub:ORG/NAME|PATH.onnx|CHECKPOINT_DIR",
              help="Registry id, hf-hub:ORG/NAME[@REV], exported .onnx file or checkpoint folder "
                   "[default: the bundled N-MNIST model].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="cuda fails loudly when the backend cannot run on CUDA.")
@click.option("--backend", type=click.Choice(["onnxruntime", "torch"]), default="onnxruntime",
              show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Samples per inference call (batches span files).")
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="json: one object per line.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Threads reading and binning files [default: min(4, CPUs)].")
@click.option("--window", default=None, metavar="DURATION",
              help="Event files: one prediction per sliding window of this length (300ms, 0.3s, "
                   "300000us), each as if cut out as its own file; the file is streamed in chunks.")
@click.option("--stride", default=None, metavar="DURATION",
              help="With --window: step between window starts [default: the window].")
@click.option("--resize", is_flag=True,
              help="Image models: scale and centre-crop images of another size instead of refusing them.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="ray: a Ray cluster's actors read and predict the files (snnzoo.runtime.ray_engine; "
                   "pip install 'snnzoo[ray]'); rows come in arrival order.")
@click.option("--address", default=None, metavar="ADDR",
              help="--engine ray: the cluster (auto: the one `ray start` runs here; local: a new one) "
                   "[default: $RAY_ADDRESS, else the one `ray start` runs here, else a new local one].")
@click.option("--num-workers", type=click.IntRange(min=1), default=None,
              help="--engine ray: actors, one CPU each [default: the cluster's CPUs].")
@click.option("--output", "-o", default=None, metavar="DIR|FILE.jsonl",
              help="--engine ray: write the rows to a Parquet folder or a JSON lines file instead of "
                   "stdout; files already there are skipped (resume).")
def predict_command(inputs: tuple[str, ...], model: str | None, device: str, backend: str,
                    batch_size: int, top_k: int, fmt: str, workers: int | None, window: str | None,
                    stride: str | None, resize: bool, engine: str, address: str | None,
                    num_workers: int | None, output: str | None) -> None:
    """Classify event recordings (.npy, .npz, .bin, .bs2, .aedat, .aedat4, .raw, .dat) or, with
    an image model, images (.png, .jpg, ...; JSON field "events" is null for them)."""
    from .images import IMAGE_EXTENSIONS
    from .readers import EXTENSIONS

    if window is None and stride is not None:
        raise click.UsageError("--stride needs --window")
    if window is not None:
        from .windows import parse_duration

        try:
            window, stride = parse_duration(window), parse_duration(stride or window)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="'--window' / '--stride'") from None
    if engine == "local" and (address or num_workers or output):
        raise click.UsageError("--address, --num-workers and --output need --engine ray")
    if engine == "ray" and (backend != "onnxruntime" or window is not None or resize):
        raise click.UsageError("--engine ray runs the ONNX Runtime backend, without --window or --resize")
    try:
        if engine == "ray":
            from .ray_engine import RayPredictor

            predictor = RayPredictor(model, address=address, num_workers=num_workers, batch_size=batch_size,
                                     top_k=top_k, device="cpu" if device == "auto" else device)
        else:
            if backend == "torch":  # eager torch: reuse freed activations instead of re-faulting them
                from .allocator import keep_freed_memory

                keep_freed_memory()
            predictor = Predictor(model, backend=backend, device=device, batch_size=batch_size,
                                  workers=workers, top_k=top_k, resize=resize)
    except SnnzooError:
        raise
    except Exception as e:  # whatever else the model or device raise: one line, no traceback
        raise ModelError(one_line(e) or type(e).__name__) from None
    images = predictor.info.image is not None
    if images and window is not None:
        raise click.UsageError("--window needs an event model (event streams); this is an image model")
    targets = list(expand_inputs(inputs, set(IMAGE_EXTENSIONS if images else EXTENSIONS),
                                 "image" if images else "event"))
    failed = False
    for arg, reason in targets:
        if reason is not None:
            report(f"{arg}: {reason}")
            failed = True
    files = [arg for arg, reason in targets if reason is None]
    if files:
        writer = _Writer(fmt, predictor.top_k, max(len(f) for f in files), windows=window is not None)
        if not output:
            writer.header()
        results = (predictor.predict_windows(files, window, stride) if window is not None
                   else predictor.predict_files(files, output) if engine == "ray"
                   else predictor.predict_files(files))
        if sys.stderr.isatty() and len(files) > batch_size and window is None:
            from tqdm import tqdm

            results = tqdm(results, total=len(files), unit="file", leave=False)
        rows = 0
        for r in results:
            rows += 1
            if not r.ok:
                report(f"{r.file}: {r.error}")
                failed = True
            elif not output:
                writer.row(r)
        if output:
            click.echo(f"{output}: {rows} rows written, {predictor.skipped} files skipped (already there)")
    sys.exit(1 if failed else 0)
