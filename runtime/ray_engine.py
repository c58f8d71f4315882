"""Scale-out batch inference on a Ray cluster (Ray Data), the engine behind ``--engine ray``.

Pipeline (Ray Data, no scheduler of ours): a dataset of paths → ``map_batches`` over an actor
pool; each actor holds one :class:`~snnzoo.runtime.predictor.Predictor` (one ONNX Runtime
session of the self-describing model, whose bytes travel with the actor) and reads, validates
and bins its files itself, so only paths and result rows cross the network → one row per path.

A row is ``Prediction.to_dict()`` plus ``error``: ``file, label, class, score, topk, events,
error`` (:data:`ROW_FIELDS`); a file that cannot be read or is not the model's input is a row with
``error`` set, never a failed job. Ray Data runs pool actors with ``max_restarts=-1`` and
``max_task_retries=-1`` (its defaults): a task whose actor process dies is resubmitted to the
restarted actor, and every path still gets exactly one row (``tests/test_ray_engine.py`` kills
an actor process mid-run and checks).

Outputs are resumable: a folder is a Parquet dataset (``part-*.parquet``, each written to a
temporary name and renamed, so a killed run leaves only whole parts); a ``.jsonl``/``.json`` file
is JSON lines, flushed per batch (a torn last line is cut off on resume). Re-running with the
same output skips every path that already has a row there (by ``file`` as given), error rows included.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from ..errors import SnnzooError
from .errors import ModelError
from .model_info import ModelInfo
from .models import resolve
from .onnx_cache import onnx_path
from .onnx_metadata import read_metadata
from .predictor import Prediction, Predictor

if TYPE_CHECKING:
    import ray.data

ROW_FIELDS = ("file", "label", "class", "score", "topk", "events", "error")
INSTALL_HINT = "pip install 'snnzoo[ray]'"


class RayMissing(SnnzooError, ImportError):
    """Ray (or pyarrow) is not installed; the message says how to install it."""


def _ray():
    try:
        import pyarrow  # noqa: F401
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayMissing(f"--engine ray needs Ray Data, which is not installed: {INSTALL_HINT}") from None
    return ray


def row_schema():
    """The Arrow schema of result rows (Parquet columns)."""
    import pyarrow as pa

    ranked = pa.struct([("label", pa.int64()), ("class", pa.string()), ("score", pa.float64())])
    return pa.schema([("file", pa.string()), ("label", pa.int64()), ("class", pa.string()),
                      ("score", pa.float64()), ("topk", pa.list_(ranked)), ("events", pa.int64()),
                      ("error", pa.string())])


def to_row(p: Prediction) -> dict[str, Any]:
    """A :class:`Prediction` as a result row."""
    return {**p.to_dict(), "error": p.error}


def to_prediction(row: dict[str, Any]) -> Prediction:
    """A result row back as a :class:`Prediction`."""
    return Prediction(row["file"], row["label"], row["class"], row["score"],
                      [(t["label"], t["class"], t["score"]) for t in row["topk"] or []],
                      row["events"], row["error"])


class PredictBatch:
    """The actor: one ONNX Runtime session; a batch of paths (column ``file`` or ``path``) → result rows."""

    def __init__(self, model_bytes: bytes, batch_size: int, top_k: int, device: str, threads: int) -> None:
        with tempfile.TemporaryDirectory(prefix="snnzoo-ray-") as tmp:  # ORT keeps the model in memory
            path = Path(tmp) / "model.onnx"
            path.write_bytes(model_bytes)
            self.predictor = Predictor(path, device=device, batch_size=batch_size, workers=1,
                                       top_k=top_k, threads=threads)
        self.schema = row_schema()

    def __call__(self, batch):
        import pyarrow as pa

        paths = batch.column("file" if "file" in batch.column_names else "path").to_pylist()
        rows = [to_row(p) for p in self.predictor.predict_files(paths)]
        return pa.Table.from_pylist(rows, schema=self.schema)


class RayPredictor:
    """:class:`~snnzoo.runtime.predictor.Predictor`'s file API on a Ray cluster.

    Args:
        model: as for ``Predictor`` (``None``: the bundled default); resolved to its ONNX file here,
            on the driver, and shipped to the actors (the workers need no model files of their own).
        address: the cluster (``"auto"``: the one ``ray start`` runs on this machine; ``None``:
            Ray's default: ``$RAY_ADDRESS``, else that one, else a new local instance; ``"local"``:
            always a new one). Ignored when this process is already connected (``ray.is_initialized()``).
        num_workers: actors, one CPU (and ``threads`` ORT threads) each [default: the cluster's CPUs].
        batch_size: paths per actor call, and samples per ONNX Runtime call.
        top_k, device: as for ``Predictor``; ``device="cuda"`` gives each actor one GPU.
        threads: ONNX Runtime intra-op threads per actor.
    """

    def __init__(self, model: str | os.PathLike | None = None, *, address: str | None = None,
                 num_workers: int | None = None, batch_size: int = 64, top_k: int = 5,
                 device: str = "cpu", threads: int = 1) -> None:
        ray = _ray()
        if batch_size < 1 or (num_workers is not None and num_workers < 1):
            raise ValueError("batch_size and num_workers must be ≥ 1")
        path = onnx_path(resolve(model))
        self.info = ModelInfo.from_metadata(read_metadata(path), path.stem)
        self.model_bytes = path.read_bytes()
        self.batch_size, self.device, self.threads = batch_size, device, threads
        self.top_k = max(1, min(top_k, len(self.info.classes)))
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, logging_level="WARNING")
        ray.data.DataContext.get_current().enable_progress_bars = False  # the CLI has its own (tqdm)
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-run INFO lines on stderr
        self.num_workers = num_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.skipped = 0

    def predict_dataset(self, paths: "ray.data.Dataset") -> "ray.data.Dataset":
        """Lazy: one result row per row of ``paths`` (a column ``file`` or ``path`` of strings).
        Upstream stages that run tasks (``read_*``) need CPUs of their own: keep ``num_workers``
        below the cluster's CPUs for them, or the actors hold every CPU and the tasks never run."""
        ray = _ray()
        columns = paths.columns()
        if "file" not in columns and "path" not in columns:
            raise ValueError(f"the dataset of paths needs a column 'file' or 'path' (it has {', '.join(columns)})")
        return paths.map_batches(
            PredictBatch, batch_size=self.batch_size, batch_format="pyarrow",
            fn_constructor_kwargs={"model_bytes": self.model_bytes, "batch_size": self.batch_size,
                                   "top_k": self.top_k, "device": self.device, "threads": self.threads},
            compute=ray.data.ActorPoolStrategy(size=self.num_workers),
            num_cpus=self.threads, num_gpus=1 if self.device == "cuda" else None)

    def predict_files(self, paths: "Iterable[str | os.PathLike] | ray.data.Dataset",
                      output: str | os.PathLike | None = None) -> Iterator[Prediction]:
        """Predictions for ``paths`` as they arrive (not in input order); with ``output`` each is
        also written there, and paths already there are skipped (``self.skipped`` counts them)."""
        ray = _ray()
        sink = open_output(output) if output is not None else None
        try:
            done = sink.done() if sink else set()
            if isinstance(paths, ray.data.Dataset):
                col = "file" if "file" in paths.columns() else "path"
                # num_cpus=0: the actors may hold every CPU, and this filter must still run
                ds = paths.filter(lambda r: r[col] not in done, num_cpus=0) if done else paths
                self.skipped = len(done)
            else:
                files = [os.fspath(p) for p in paths]
                todo = [f for f in files if f not in done]
                self.skipped = len(files) - len(todo)
                if not todo:
                    return
                blocks = max(1, min(len(todo) // self.batch_size + 1, 4 * self.num_workers * 16))
                ds = ray.data.from_items([{"file": f} for f in todo], override_num_blocks=blocks)
            for table in self.predict_dataset(ds).iter_batches(batch_size=None, batch_format="pyarrow"):
                rows = table.to_pylist()
                if sink:
                    sink.write(rows)
                yield from map(to_prediction, rows)
        finally:
            if sink:
                sink.close()


def expand(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    """A path, a glob pattern (``**`` recursive) or a list of them → the files, in order."""
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    files: list[str] = []
    for item in map(os.fspath, items):
        matches = sorted(glob.glob(item, recursive=True)) if glob.has_magic(item) and not os.path.exists(item) else [item]
        files += matches or [item]  # an unmatched pattern stays, and gets its error row
    return files


def predict(inputs: str | os.PathLike | Iterable[str | os.PathLike], model: str | os.PathLike | None = None,
            *, output: str | os.PathLike | None = None, **options: Any) -> list[dict[str, Any]]:
    """Result rows (:data:`ROW_FIELDS`) for files, globs or a list of them, in input order, one per
    file; with ``output``, rows already there are kept and only the others computed (and returned).
    ``options`` go to :class:`RayPredictor` (``address``, ``num_workers``, ``batch_size``, ...)."""
    files = expand(inputs)
    rows = [to_row(p) for p in RayPredictor(model, **options).predict_files(files, output)]
    position: dict[str, list[int]] = {}
    for i, f in enumerate(files):
        position.setdefault(f, []).append(i)
    return sorted(rows, key=lambda r: position[r["file"]].pop(0))


# ---- resumable outputs -----------------------------------------------------------------------
def open_output(output: str | os.PathLike) -> "ParquetParts | JsonLines":
    """``*.jsonl`` / ``*.json``: a JSON lines file; anything else: a Parquet dataset folder."""
    path = Path(output)
    return JsonLines(path) if path.suffix.lower() in (".jsonl", ".json") else ParquetParts(path)


class ParquetParts:
    """A folder of ``part-<time>-<uuid>.parquet`` files; rows are buffered and written as a part
    every ``flush_rows`` rows or ``flush_s`` seconds (a temporary name, then an atomic rename)."""

    def __init__(self, folder: Path, flush_rows: int = 4096, flush_s: float = 30.0) -> None:
        if folder.exists() and not folder.is_dir():
            raise ModelError(f"{folder}: --output exists and is not a folder (use a folder for "
                             "Parquet, or a .jsonl file)")
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(".part-*.tmp"):  # a run killed while writing a part
            stale.unlink()
        self.folder, self.flush_rows, self.flush_s = folder, flush_rows, flush_s
        self.buffer: list[dict[str, Any]] = []
        self.last = time.monotonic()

    def done(self) -> set[str]:
        import pyarrow.parquet as pq

        return {f for part in sorted(self.folder.glob("part-*.parquet"))
                for f in pq.read_table(part, columns=["file"]).column("file").to_pylist()}

    def write(self, rows: list[dict[str, Any]]) -> None:
        self.buffer += rows
        if len(self.buffer) >= self.flush_rows or time.monotonic() - self.last >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.buffer:
            name = f"part-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.parquet"
            tmp = self.folder / f".{name}.tmp"
            pq.write_table(pa.Table.from_pylist(self.buffer, schema=row_schema()), tmp)
            os.replace(tmp, self.folder / name)
            self.buffer = []
        self.last = time.monotonic()

    def close(self) -> None:
        self.flush()


class JsonLines:
    """One JSON object per line, appended and flushed per batch."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.f = None

    def done(self) -> set[str]:
        if not self.path.is_file():
            return set()
        data = self.path.read_bytes()
        whole = data[: data.rfind(b"\n") + 1]
        if len(whole) < len(data):  # a torn last line from a killed run: cut it off
            with open(self.path, "r+b") as f:
                f.truncate(len(whole))
        return {json.loads(line)["file"] for line in whole.splitlines() if line.strip()}

    def write(self, rows: list[dict[str, Any]]) -> None:
        if self.f is None:
            self.f = open(self.path, "a", encoding="utf-8")
        self.f.write("".join(json.dumps(r) + "\n" for r in rows))
        self.f.flush()

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
