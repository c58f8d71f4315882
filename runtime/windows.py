r"""Sliding windows over event streams of any length: one prediction per window.

Semantics (``window`` ``W`` and ``stride`` ``S`` in µs; ``t_first``/``t_last`` the first/last
timestamp of the file):

- window k covers the half-open interval ``[a_k, a_k + W)`` with ``a_k = t_first + k·S``, and
  holds the events with ``a_k ≤ t < a_k + W``;
- windows are emitted for k = 0, 1, … up to and including the first one that reaches past
  ``t_last`` (``a_k + W > t_last``; never one starting after it): with ``S ≤ W`` every event
  is in at least one window, and only the last window may be cut short by the end of the
  recording;
- each window is binned exactly like a file holding only its events (the model's binning spec:
  for ``n_time_bins`` the T bins span the window's own first to last event) and the network runs
  with a fresh (zero) state, as in training, where every sample was one recording binned this
  way. So a window's prediction equals `snnzoo predict` on that window cut out as its own file;
- a window without events yields a row with ``events = 0`` and no label.

What is shared between overlapping windows and what is recomputed: every event is read,
decoded and validated once (`EventStream` chunks), and windows are batched across the whole
run (``batch_size`` windows per session call, binned by one `bin_batch` call). Binning is
recomputed per window (each event is binned ``≈ W / S`` times) and so is the network: the bin
edges depend on the window's own first and last event, and the LIF reset (``u·(1 − o)``) makes
the state after a shifted window no function of another window's state, so nothing of one
window's T steps is exactly reusable by the next. (The streaming one-step graph carries state
*across* windows, which is a different model input than training; it is not used here.)

Memory: the stream is read in chunks; the open windows keep the events of at most one window
plus one chunk, and a batch holds at most ``batch_size`` windows and, unless a single window is
larger, `BATCH_EVENTS` events (two batches are in flight: one binned while the other runs).
A decoding or validation error raises after the windows that ended before the bad data.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from .events import EVENT_DTYPE
from .readers import concat_events

BATCH_EVENTS = 1 << 21  # a batch of windows ends early once it holds this many events
_UNITS = {"us": 1, "µs": 1, "ms": 1_000, "s": 1_000_000, "min": 60_000_000}


def parse_duration(text: str | int) -> int:
    """``"300ms"``, ``"0.3s"``, ``"300000us"``, ``"1min"`` or a bare number of µs → whole µs (> 0)."""
    if isinstance(text, (int, np.integer)):
        value = int(text)
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|µs|ms|s|min)?\s*", str(text))
        if m is None:
            raise ValueError(f"cannot read the duration {text!r}; write e.g. 300ms, 0.3s or 300000us")
        exact = float(m.group(1)) * _UNITS[m.group(2) or "us"]
        value = round(exact)
        if abs(exact - value) > 1e-6 * max(1.0, exact):
            raise ValueError(f"duration {text!r} is not a whole number of microseconds")
    if value < 1:
        raise ValueError(f"duration {text!r} must be at least 1 µs")
    return value


def iter_windows(chunks: Iterable[np.ndarray], window: int, stride: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(t_start, t_end, events)`` of each window (module doc) over sorted event ``chunks``.

    A window is yielded as soon as an event at or after its end has been read (so all of its
    events are known); the rest when the chunks end. An exception from ``chunks`` propagates
    after every window that had ended before it."""
    window, stride = int(window), int(stride)
    if window < 1 or stride < 1:
        raise ValueError("window and stride must be ≥ 1 µs")
    buf = np.zeros(0, EVENT_DTYPE)
    start = None
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        if start is None:
            start = int(chunk["t"][0])
        buf = concat_events([buf, chunk]) if len(buf) else chunk
        t = buf["t"]
        t_last = int(t[-1])
        while start + window <= t_last:
            lo, hi = np.searchsorted(t, [start, start + window])
            yield start, start + window, buf[lo:hi]
            start += stride
        keep = int(np.searchsorted(t, start))
        buf = buf[keep:]
    if start is None:
        return
    t = buf["t"]
    while start <= t_last:
        lo, hi = np.searchsorted(t, [start, start + window])
        yield start, start + window, buf[lo:hi]
        if start + window > t_last:
            return
        start += stride


def _file_windows(predictor, path: str, window: int, stride: int, check, chunk_events: int) -> Iterator[tuple]:
    """``(path, t_start, t_end, events, None)`` for each window of one file, then
    ``(path, None, None, None, exception)`` if it fails (after the windows that ended before it)."""
    from .readers import EventStream

    try:
        stream = EventStream(path, predictor.info.sensor_size, chunk_events)
        check(path, stream.sensor, predictor.info.sensor_size)
        for a, b, ev in iter_windows(stream, window, stride):
            yield path, a, b, ev, None
    except Exception as e:  # each file's failure is its own row, after its good windows
        yield path, None, None, None, e


def window_scores(predictor, paths: Iterable[str], window: int, stride: int, check,
                  chunk_events: int | None = None) -> Iterator[tuple]:
    """``(path, t_start, t_end, events, scores, None)`` per window of each file, in order
    (``scores`` None for a window without events), or ``(path, None, None, 0, None, exception)``
    when a file fails. ``predictor`` is a `Predictor` (its model info, backend and batch size);
    ``check(path, sensor, model_sensor)`` refuses a stream of another sensor. Batches of windows
    span files; the next batch is read and binned in a thread while the session runs this one."""
    from concurrent.futures import ThreadPoolExecutor

    from .binning import bin_batch, spec_args
    from .readers import CHUNK_EVENTS

    spec, sensor = predictor.info.binning, predictor.info.sensor_size
    items = (item for p in paths for item in _file_windows(predictor, str(p), window, stride, check,
                                                           chunk_events or CHUNK_EVENTS))

    def next_batch() -> tuple[list[tuple], Any]:
        batch: list[tuple] = []
        full = n_events = 0
        for item in items:
            batch.append(item)
            if item[4] is not None:
                break
            full += len(item[3]) > 0
            n_events += len(item[3])
            if full == predictor.batch_size or n_events >= BATCH_EVENTS:
                break
        streams = [it[3] for it in batch if it[4] is None and len(it[3])]
        if not streams or not predictor.backend.bins_on_host:
            return batch, streams
        return batch, bin_batch(streams, sensor, **spec_args(spec))

    with ThreadPoolExecutor(1, thread_name_prefix="snnzoo-windows") as pool:
        ahead = pool.submit(next_batch)
        while True:
            batch, inputs = ahead.result()
            if not batch:
                return
            ahead = pool.submit(next_batch)
            scores = None
            if len(inputs):
                scores = (predictor.backend.scores(inputs) if predictor.backend.bins_on_host
                          else predictor.backend.scores_events(inputs))
            i = 0
            for path, a, b, ev, error in batch:
                if error is not None:
                    yield path, None, None, 0, None, error
                elif len(ev) == 0:
                    yield path, a, b, 0, None, None
                else:
                    yield path, a, b, len(ev), scores[i], None
                    i += 1
