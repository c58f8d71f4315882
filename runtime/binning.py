r"""Events → frames ``[T, P, H, W]`` (numpy; no torch), one stream or a batch at once.

``n_time_bins=T``: with ``t0`` the first and ``t1`` the last timestamp and the window
``w = max((t1 − t0) // T, 1)`` (integer µs, as tonic), event i goes to bin
``min((t_i − t0) // w, T − 1)``. This equals ``tonic.transforms.ToFrame(n_time_bins=T)``
except that tonic drops the events with ``t ≥ t0 + T·w`` (the last timestamp among them);
we keep them in the last bin.
``time_window=w``: bin ``(t_i − t0) // w``; the number of bins is ``ceil((t1 − t0 + 1) / w)``
unless ``n_time_bins`` fixes it (events past it are dropped). This equals
``ToFrame(time_window=w, include_incomplete=True)`` except when ``t1 − t0`` is a multiple of
``w``, where tonic drops the events at ``t1``. In a batch, ``T`` is the largest number of bins
and shorter streams end with empty frames.
``mode="binary"`` clamps counts to 1. ``downsample=d`` maps pixel (x, y) to (x // d, y // d)
on a ``(W // d) × (H // d)`` grid (the last ``W mod d`` columns / ``H mod d`` rows are dropped).
``P = 1`` merges the polarities. An empty stream gives all-zero frames.

Unlike tonic (which returns all-zero frames for unsorted timestamps) the input is checked:
timestamps must be integers, sorted within each stream; 0 ≤ x < W, 0 ≤ y < H, 0 ≤ p < P
(any p when P = 1). Violations raise `EventFileError("events[i]", reason)`.
The batch is binned with ``bincount`` over the flat indices ``((frame·P + p)·H' + y')·W' + x'``
(``frame = b·T + bin``; the bins from one ``searchsorted`` of the bin edges per stream), a
chunk of streams at a time so that the counts stay in cache, straight into the float32 output.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import EventFileError
from .specs import BinningSpec

Sensor = tuple[int, int, int]


def check_binning_args(sensor_size: Sensor, n_time_bins: int | None, time_window: int | None,
                       mode: str, downsample: int) -> tuple[int, int, int]:
    """Validate the binning parameters; returns the output grid ``(P, H // d, W // d)``."""
    if time_window is None and n_time_bins is None:
        raise ValueError("give n_time_bins or time_window")
    if n_time_bins is not None and int(n_time_bins) < 1:
        raise ValueError(f"n_time_bins must be ≥ 1, got {n_time_bins}")
    if time_window is not None and int(time_window) < 1:
        raise ValueError(f"time_window must be ≥ 1 µs, got {time_window}")
    if mode not in ("count", "binary"):
        raise ValueError(f"unknown binning mode {mode!r}; use 'count' or 'binary'")
    w_s, h_s, p_s = (int(v) for v in sensor_size)
    if int(downsample) < 1 or w_s // downsample < 1 or h_s // downsample < 1:
        raise ValueError(f"downsample={downsample} does not fit the sensor {w_s}×{h_s}")
    return p_s, h_s // int(downsample), w_s // int(downsample)


_CHUNK_BINS = 1 << 18  # int64 counts per bincount call (2 MiB): they stay in cache


def _fields(batch: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Contiguous ``x, y, t, p`` of all streams, concatenated."""
    cols = []
    for name in ("x", "y", "t", "p"):
        c = np.concatenate([e[name] for e in batch])
        if c.dtype.kind not in "biu":
            raise EventFileError("events", f"field {name} must hold integers, got dtype {c.dtype}")
        cols.append(c)
    return tuple(cols)


def _locate(pos: int, ends: np.ndarray) -> tuple[int, int]:
    """Flat event position → (stream, event within it)."""
    b = int(np.searchsorted(ends, pos, side="right"))
    return b, pos - int(ends[b - 1] if b else 0)


def _check(x: np.ndarray, y: np.ndarray, t: np.ndarray, p: np.ndarray, ends: np.ndarray,
           sensor_size: Sensor) -> None:
    """Sorted timestamps per stream, coordinates and polarities inside the sensor."""
    down = np.flatnonzero(t[1:] < t[:-1]) + 1
    down = down[~np.isin(down, ends)]  # a new stream may start earlier than the last ended
    if len(down):
        b, j = _locate(int(down[0]), ends)
        raise EventFileError(f"events[{b}]", f"timestamps are not sorted at event {j} (sort by t)")
    w_s, h_s, p_s = sensor_size
    for name, c, limit, what in (("x", x, w_s, "outside the sensor width"),
                                 ("y", y, h_s, "outside the sensor height"),
                                 ("p", p, p_s if p_s > 1 else None, "not a polarity in [0, P)")):
        if limit is not None and (c.min() < 0 or c.max() >= limit):
            pos = int(np.argmax((c < 0) | (c >= limit)))
            b, j = _locate(pos, ends)
            raise EventFileError(f"events[{b}]", f"{name}={c[pos]} at event {j} is {what} ({limit})")


def segment_bounds(t: np.ndarray, lens: np.ndarray, n_time_bins: int | None,
                   time_window: int | None) -> tuple[int, int, np.ndarray]:
    """Bin edges per stream → ``(T, tail, counts [B, T + tail])``: the number of events of
    stream b in bin k, from a ``searchsorted`` of the edges ``t0 + k·window`` in its timestamps
    (``t``: all streams concatenated, each sorted). ``tail = 1`` with ``time_window``: the
    events past bin T − 1 are counted in an extra, dropped bin."""
    n_b = len(lens)
    ends = np.cumsum(lens)
    starts = ends - lens
    full = lens > 0
    t0, t1 = np.zeros(n_b, np.int64), np.zeros(n_b, np.int64)
    t0[full], t1[full] = t[starts[full]], t[ends[full] - 1]
    if time_window is None:
        steps, tail = int(n_time_bins), 0
        window = np.maximum((t1 - t0) // steps, 1)
    else:
        window = np.full(n_b, int(time_window), np.int64)
        steps, tail = int(n_time_bins or (-(-(t1 - t0 + 1) // window)).max()), 1
    n_edges = steps - 1 + tail
    edges = t0[:, None] + window[:, None] * np.arange(1, n_edges + 1)
    bounds = np.repeat(starts[:, None], n_edges + 2, axis=1)
    bounds[:, -1] = ends
    for b in np.flatnonzero(full):
        bounds[b, 1:-1] = np.searchsorted(t[starts[b]:ends[b]], edges[b]) + starts[b]
    return steps, tail, np.diff(bounds, axis=1)


def bin_batch(batch: Sequence[np.ndarray], sensor_size: Sensor, n_time_bins: int | None = None,
              time_window: int | None = None, mode: str = "count", downsample: int = 1) -> np.ndarray:
    """Bin a list of structured event arrays (``x, y, t, p``); returns float32 ``[B, T, P, H', W']``."""
    n_pol, h, w = check_binning_args(sensor_size, n_time_bins, time_window, mode, downsample)
    d, fsz, n_b = int(downsample), n_pol * h * w, len(batch)
    lens = np.fromiter(map(len, batch), np.int64, n_b)
    ends = np.cumsum(lens)
    starts = ends - lens
    if n_b == 0 or ends[-1] == 0:
        return np.zeros((n_b, n_time_bins or 1, n_pol, h, w), np.float32)
    x, y, t, p = _fields(batch)
    _check(x, y, t, p, ends, sensor_size)
    border = d > 1 and (w * d != sensor_size[0] or h * d != sensor_size[1])
    steps, tail, per_bin = segment_bounds(t, lens, n_time_bins, time_window)
    tail = max(tail, int(border))
    frames = np.arange(n_b * (steps + tail), dtype=np.int64).reshape(n_b, steps + tail)[:, :per_bin.shape[1]]
    idx = np.repeat(frames.ravel() * fsz, per_bin.ravel())
    if d > 1:
        x, y = x // d, y // d
    spatial = y.astype(np.int32)
    spatial *= w
    spatial += x
    if n_pol > 1:
        spatial += p.astype(np.int32) * (h * w)
    idx += spatial
    if border:
        out_of_grid = (x >= w) | (y >= h)
        idx[out_of_grid] = (np.repeat(np.arange(n_b), lens)[out_of_grid] * (steps + tail) + steps) * fsz
    out = np.empty((n_b, steps, fsz), np.float32)
    per = max(1, _CHUNK_BINS // ((steps + tail) * fsz))
    for b0 in range(0, n_b, per):
        b1 = min(n_b, b0 + per)
        counts = np.bincount(idx[starts[b0]:ends[b1 - 1]] - b0 * (steps + tail) * fsz,
                             minlength=(b1 - b0) * (steps + tail) * fsz)
        out[b0:b1] = counts.reshape(b1 - b0, steps + tail, fsz)[:, :steps]
    if mode == "binary":
        np.minimum(out, 1.0, out=out)
    return out.reshape(n_b, steps, n_pol, h, w)


def bin_events(events: np.ndarray, sensor_size: Sensor, n_time_bins: int | None = None,
               time_window: int | None = None, mode: str = "count", downsample: int = 1) -> np.ndarray:
    """Bin one stream; returns float32 frames ``[T, P, H // d, W // d]``."""
    return bin_batch([events], sensor_size, n_time_bins, time_window, mode, downsample)[0]


def spec_args(spec: BinningSpec | dict) -> dict:
    """``n_time_bins``, ``time_window``, ``mode``, ``downsample`` of a model's binning spec: a
    :class:`~snnzoo.runtime.specs.BinningSpec` or its dict (``config["input"]["binning"]``), as the
    keyword arguments of :func:`bin_events` and :func:`bin_batch`."""
    d = spec.to_dict() if isinstance(spec, BinningSpec) else spec
    return {"n_time_bins": d.get("n_time_bins"), "time_window": d.get("time_window"),
            "mode": d.get("mode", "count"), "downsample": d.get("downsample", 1)}


def bin_from_spec(events: np.ndarray, sensor_size: Sensor, spec: BinningSpec | dict) -> np.ndarray:
    """Bin with a model's binning spec (a :class:`~snnzoo.runtime.specs.BinningSpec` or its dict)."""
    return bin_events(events, sensor_size, **spec_args(spec))
