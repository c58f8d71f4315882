r"""Events → frames ``[T, P, H, W]`` (numpy; no torch).

``n_time_bins=T``: with ``t0`` the first and ``t1`` the last timestamp and the window
``w = max((t1 − t0) // T, 1)`` (integer µs, as tonic), event i goes to bin
``min((t_i − t0) // w, T − 1)``. This equals ``tonic.transforms.ToFrame(n_time_bins=T)``
except that tonic drops the events with ``t ≥ t0 + T·w`` (the last timestamp among them);
we keep them in the last bin.
``time_window=w``: bin ``(t_i − t0) // w``; the number of bins is ``ceil((t1 − t0 + 1) / w)``
unless ``n_time_bins`` fixes it (events past it are dropped).
``mode="binary"`` clamps counts to 1. ``downsample=d`` maps pixel (x, y) to (x // d, y // d).
"""
from __future__ import annotations

import numpy as np


def bin_events(events: np.ndarray, sensor_size: tuple[int, int, int], n_time_bins: int | None = None,
               time_window: int | None = None, mode: str = "count", downsample: int = 1) -> np.ndarray:
    """Bin one stream; returns float32 frames ``[T, P, H // d, W // d]``."""
    w_s, h_s, p_s = sensor_size
    h, w = h_s // downsample, w_s // downsample
    t = events["t"]
    if time_window is None and n_time_bins is None:
        raise ValueError("give n_time_bins or time_window")
    if len(t) == 0:
        return np.zeros((n_time_bins or 1, p_s, h, w), np.float32)
    t0 = int(t[0])
    if time_window is None:
        window = max((int(t[-1]) - t0) // n_time_bins, 1)
        steps = n_time_bins
    else:
        window = int(time_window)
        steps = n_time_bins or -(-(int(t[-1]) - t0 + 1) // window)
    b = (t - t0) // window
    if time_window is None:
        np.minimum(b, steps - 1, out=b)
    keep = b < steps
    x = events["x"][keep].astype(np.int64) // downsample
    y = events["y"][keep].astype(np.int64) // downsample
    p = events["p"][keep].astype(np.int64) if p_s > 1 else np.zeros(int(keep.sum()), np.int64)
    inside = (x < w) & (y < h)
    idx = ((b[keep] * p_s + p) * h + y) * w + x
    frames = np.bincount(idx[inside], minlength=steps * p_s * h * w).astype(np.float32)
    frames = frames.reshape(steps, p_s, h, w)
    if mode == "binary":
        np.minimum(frames, 1.0, out=frames)
    elif mode != "count":
        raise ValueError(f"unknown binning mode {mode!r}; use 'count' or 'binary'")
    return frames


def bin_from_spec(events: np.ndarray, sensor_size: tuple[int, int, int], spec: dict) -> np.ndarray:
    """Bin with a model's binning spec (``config["input"]["binning"]``)."""
    return bin_events(events, sensor_size, n_time_bins=spec.get("n_time_bins"),
                      time_window=spec.get("time_window"), mode=spec.get("mode", "count"),
                      downsample=spec.get("downsample", 1))
