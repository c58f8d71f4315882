"""`Predictor`: batch inference on event or image files, the Python API behind ``snnzoo predict``.

Pipeline: a thread pool reads, validates and (for ONNX Runtime) bins files while the session runs
the previous batch; batches are formed across files and results come back in input order. A file
that cannot be read, or whose sensor differs from the model's, yields a :class:`Prediction` with
``error`` set; the other files are still predicted. Image models (input kind ``image``) read
image files instead (:mod:`snnzoo.runtime.images`); a file of the other kind is such a failure.

Scores are the voting layer's class rates in [0, 1]; ties rank the lower class index first.
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from .binning import bin_from_spec
from .errors import EventFileError
from .events import validate_events
from .images import image_not_events, load_image
from .model_info import ModelInfo
from .models import ModelRef, resolve
from .onnx_cache import onnx_path, torch_door
from .readers import read_events


@dataclass
class Prediction:
    """One file's result. ``topk`` holds ``(label, class, score)`` triples, best first;
    ``events`` is the stream's event count, None for an image."""

    file: str
    label: int | None = None
    cls: str | None = None
    score: float | None = None
    topk: list[tuple[int, str, float]] = field(default_factory=list)
    events: int | None = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "label": self.label, "class": self.cls, "score": self.score,
                "topk": [{"label": lab, "class": c, "score": s} for lab, c, s in self.topk],
                "events": self.events}


@dataclass
class WindowPrediction(Prediction):
    """One window's result (`Predictor.predict_windows`): a :class:`Prediction` of the events in
    ``[t_start_us, t_end_us)``; no label when the window holds no events."""

    t_start_us: int | None = None
    t_end_us: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "t_start_us": self.t_start_us, "t_end_us": self.t_end_us,
                **{k: v for k, v in super().to_dict().items() if k != "file"}}


class OrtBackend:
    """ONNX Runtime: binning on the host (numpy), the batch on CPU or through I/O binding on CUDA."""

    bins_on_host = True

    def __init__(self, ref: ModelRef, device: str, threads: int | None = None) -> None:
        from .onnx_metadata import read_metadata
        from .ort_session import OrtSession

        self.session = OrtSession(onnx_path(ref), device, threads)
        self.device = self.session.device
        self.info = ModelInfo.from_metadata(read_metadata(self.session.session), ref.name)

    def scores(self, frames: np.ndarray) -> np.ndarray:
        return self.session.run(frames)


class Predictor:
    """Batch predictions from an event or image model.

    Args:
        model: ``None`` (the bundled default), a registry id, ``hf-hub:ORG/NAME[@REV]``, a
            checkpoint folder or an ``.onnx`` file (:func:`snnzoo.runtime.models.resolve`).
        backend: ``"onnxruntime"`` (imports neither torch nor ``snnzoo.zoo``) or ``"torch"``.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` (an error if CUDA is asked for and unusable).
        batch_size: samples per inference call, formed across files.
        workers: reader/binner threads (default ``min(4, cpu_count)``).
        top_k: how many ranked classes each :class:`Prediction` keeps.
        resize: image models: scale and centre-crop image files of another size instead of
            refusing them (:mod:`snnzoo.runtime.images` says why refusing is the default).
        threads: ONNX Runtime intra-op threads (default: ORT's, one per physical core).
    """

    def __init__(self, model: str | os.PathLike | None = None, backend: str = "onnxruntime",
                 device: str = "auto", batch_size: int = 64, workers: int | None = None,
                 top_k: int = 5, resize: bool = False, threads: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be ≥ 1")
        ref = resolve(model)
        if backend == "onnxruntime":
            self.backend = OrtBackend(ref, device, threads)
        elif backend == "torch":
            self.backend = torch_door("--backend torch").TorchBackend(ref, device, batch_size)
        else:
            raise ValueError(f"unknown backend {backend!r}; use onnxruntime or torch")
        self.info: ModelInfo = self.backend.info
        self.device: str = self.backend.device
        self.batch_size = batch_size
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.top_k = max(1, min(top_k, len(self.info.classes)))
        self.resize = resize

    # ---- arrays ---------------------------------------------------------------------------
    def predict_frames(self, frames: np.ndarray) -> np.ndarray:
        """Class scores ``[B, classes]`` for the model's input batch (or one sample): binned
        frames ``[B, T, P, H, W]``, or normalised images ``[B, C, H, W]`` for image models."""
        frames = np.asarray(frames, dtype=np.float32)
        want = self.info.input_shape
        single = frames.ndim == len(want)
        if single:
            frames = frames[None]
        if frames.shape[1:] != want:
            raise ValueError(f"input of shape [B, {', '.join(map(str, frames.shape[1:]))}] does not fit "
                             f"{self.info.name}, which takes [B, {', '.join(map(str, want))}]")
        out = np.concatenate([self.backend.scores(frames[i:i + self.batch_size])
                              for i in range(0, len(frames), self.batch_size)])
        return out[0] if single else out

    def predict_images(self, images: np.ndarray) -> np.ndarray:
        """Class scores ``[B, classes]`` for pixels ``[B, H, W, C]`` (or one ``[H, W, C]``), uint8
        or float in 0–255 units, normalised as the model's metadata says (no resizing)."""
        if self.info.image is None:
            raise ValueError(f"{self.info.name} takes event streams, not images")
        return self.predict_frames(self.info.image.normalize(images))

    def bin(self, events: np.ndarray) -> np.ndarray:
        """Frames ``[T, P, H, W]`` of one stream with the model's binning spec."""
        return bin_from_spec(events, self.info.sensor_size, self.info.binning)

    def predict_events(self, events: np.ndarray, name: str = "<events>") -> Prediction:
        """Predict one in-memory stream (structured array x, y, t, p on the model's sensor)."""
        events = validate_events(events, self.info.sensor_size, name)
        return self._rank(name, self.predict_frames(self.bin(events)), len(events))

    # ---- files ----------------------------------------------------------------------------
    def predict_files(self, paths: Iterable[str | os.PathLike]) -> Iterator[Prediction]:
        """Predictions for ``paths``, in order; failures come back with ``error`` set."""
        paths = iter(paths)
        ahead = self.batch_size + self.workers  # the next batch is read while this one runs
        with ThreadPoolExecutor(self.workers, thread_name_prefix="snnzoo-read") as pool:
            inflight: deque = deque()
            done: list[tuple[str, Any, int, str | None]] = []

            def refill() -> None:
                while len(inflight) < ahead:
                    path = next(paths, None)
                    if path is None:
                        return
                    inflight.append((os.fspath(path), pool.submit(self._load, path)))

            refill()
            good = 0
            while inflight:
                path, fut = inflight.popleft()
                refill()
                try:
                    item, n = fut.result()
                    done.append((path, item, n, None))
                    good += 1
                except Exception as e:  # each file's failure is its own result
                    done.append((path, None, 0, _reason(path, e)))
                if good == self.batch_size or not inflight:
                    yield from self._run(done)
                    done, good = [], 0

    def predict_windows(self, paths: Iterable[str | os.PathLike], window: int | str,
                        stride: int | str | None = None) -> Iterator[WindowPrediction]:
        """One :class:`WindowPrediction` per sliding window of each event file (``window``/``stride``
        in µs or as ``"300ms"``; stride defaults to the window), in order; a file that fails ends
        with one row whose ``error`` names the reason (and byte offset). Semantics, state reset
        and memory in :mod:`snnzoo.runtime.windows`; files are streamed in chunks."""
        from .windows import parse_duration

        if self.info.sensor_size is None:
            raise ValueError(f"{self.info.name} is not an event model; windows need event streams")
        window = parse_duration(window)
        return self._windows(paths, window, parse_duration(stride) if stride is not None else window)

    def _windows(self, paths: Iterable[str | os.PathLike], window: int, stride: int) -> Iterator[WindowPrediction]:
        from .windows import window_scores

        for path, a, b, n, scores, error in window_scores(self, paths, window, stride, check_sensor):
            if error is not None:
                yield WindowPrediction(path, error=_reason(path, error))
            elif scores is None:
                yield WindowPrediction(path, t_start_us=a, t_end_us=b)
            else:
                r = self._rank(path, scores, n)
                yield WindowPrediction(r.file, r.label, r.cls, r.score, r.topk, r.events, t_start_us=a, t_end_us=b)

    def _load(self, path: str | os.PathLike) -> tuple[Any, int | None]:
        if self.info.image is not None:
            return load_image(path, self.info.image, self.info.name, self.resize), None
        try:
            events, sensor, _ = read_events(path, sensor_size=self.info.sensor_size)
        except EventFileError:
            error = image_not_events(path, f"; {self.info.name} takes event streams")
            if error is None:
                raise
            raise error from None
        check_sensor(os.fspath(path), sensor, self.info.sensor_size)
        return (self.bin(events) if self.backend.bins_on_host else events), len(events)

    def _run(self, done: list[tuple[str, Any, int, str | None]]) -> Iterator[Prediction]:
        """One batch's results; if the backend fails on it, each of its files gets the error."""
        items = [d[1] for d in done if d[3] is None]
        scores, failed = None, None
        if items:
            try:
                on_host = self.backend.bins_on_host or self.info.image is not None
                scores = (self.backend.scores(np.stack(items)) if on_host
                          else self.backend.scores_events(items))
            except Exception as e:  # a backend failure fails this batch's files, never the run
                first = (str(e).strip().splitlines() or ["no message"])[0]
                failed = f"inference failed ({type(e).__name__}: {first})"
        i = 0
        for path, _, n, err in done:
            if err is not None or failed is not None:
                yield Prediction(path, error=err or failed)
            else:
                yield self._rank(path, scores[i], n)
                i += 1

    def _rank(self, path: str, scores: np.ndarray, n_events: int | None) -> Prediction:
        order = np.argsort(-scores, kind="stable")[: self.top_k]
        topk = [(int(j), self.info.classes[j], round(float(scores[j]), 6)) for j in order]
        lab, cls, score = topk[0]
        return Prediction(path, lab, cls, score, topk, n_events)


def check_sensor(path: str, sensor: tuple[int, int, int], model_sensor: tuple[int, int, int]) -> None:
    """Refuse a stream recorded on another sensor than the model's (never crop silently).

    ``read_events(path, sensor_size=model_sensor)`` gives files that do not state their sensor
    (``.npy``) the model's and checks every event lies on it; a stated sensor must be equal."""
    if tuple(sensor) != tuple(model_sensor):
        (w, h, p), (mw, mh, mp) = sensor, model_sensor
        raise EventFileError(path, f"sensor {w}x{h}x{p} (W x H x polarities) does not match the "
                                   f"model's {mw}x{mh}x{mp}")


def _reason(path: str, e: Exception) -> str:
    """The one-line reason of a failure, without repeating the path."""
    text = str(e) or type(e).__name__
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text.splitlines()[0]
