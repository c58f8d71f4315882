"""The one event representation: a numpy structured array with fields ``x, y, t, p``
(tonic's convention; ``t`` in microseconds, ``p`` in {0, 1}) plus a sensor size ``(W, H, P)``.

`validate_events` turns any array a user may hand us into that representation or raises
`EventFileError` with a one-line reason: a structured array with (at least) the fields
``x, y, t, p`` of any numeric dtype, or a plain numeric ``(N, 4)`` array with the columns
``[t, x, y, p]`` (`PLAIN_COLUMNS`). Requirements: at least one event; integer (or integral
float) values; ``t ≥ 0`` and non-decreasing; ``0 ≤ x < W``, ``0 ≤ y < H``; ``p`` in {0, 1}
(bool, or {−1, +1} with −1 → 0), and ``p < P`` unless ``P = 1`` (polarities merged).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import EventFileError

EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i1")])
FIELDS = ("x", "y", "t", "p")
PLAIN_COLUMNS = ("t", "x", "y", "p")


def make_events(x, y, t, p) -> np.ndarray:
    """Build a structured event array from four equally long columns."""
    n = len(t)
    ev = np.empty(n, dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p
    return ev


def infer_sensor_size(events: np.ndarray) -> tuple[int, int, int]:
    """Smallest sensor holding the events: ``(max x + 1, max y + 1, 2)``."""
    if len(events) == 0:
        return (1, 1, 2)
    return (int(events["x"].max()) + 1, int(events["y"].max()) + 1, 2)


def _integral(col: np.ndarray, name: str, source: str) -> np.ndarray:
    kind = col.dtype.kind
    if kind in "biu":
        return col.astype(np.int64)
    if kind == "f":
        if not np.isfinite(col).all():
            i = int(np.flatnonzero(~np.isfinite(col))[0])
            raise EventFileError(source, f"{name} is NaN or infinite at event {i}")
        if (col != np.floor(col)).any():
            unit = " microseconds (seconds? multiply by 1e6)" if name == "t" else " pixels"
            raise EventFileError(source, f"{name} has non-integer values; expected whole{unit}")
        return col.astype(np.int64)
    if kind == "O":
        raise EventFileError(source, f"field {name} holds Python objects; expected numbers")
    raise EventFileError(source, f"field {name} has dtype {col.dtype}; expected numbers")


def _columns(arr: np.ndarray, source: str) -> dict[str, np.ndarray]:
    if not isinstance(arr, np.ndarray):
        raise EventFileError(source, f"expected a numpy array of events, got {type(arr).__name__}")
    if arr.dtype.names is not None:
        missing = [f for f in FIELDS if f not in arr.dtype.names]
        if missing:
            raise EventFileError(source, f"structured array lacks field(s) {', '.join(missing)} "
                                         f"(has {', '.join(arr.dtype.names)}; need x, y, t, p)")
        if arr.ndim != 1:
            raise EventFileError(source, f"expected a 1-D structured array, got shape {arr.shape}")
        return {f: arr[f] for f in FIELDS}
    if arr.dtype.kind == "O":
        raise EventFileError(source, "array holds Python objects; expected numeric events")
    if arr.ndim != 2 or arr.shape[1] != 4 or arr.dtype.kind not in "biuf":
        raise EventFileError(source, f"expected a structured array with fields x, y, t, p or a numeric "
                                     f"(N, 4) array [t, x, y, p]; got shape {arr.shape} dtype {arr.dtype}")
    return {name: arr[:, i] for i, name in enumerate(PLAIN_COLUMNS)}


def validate_events(events: np.ndarray, sensor_size: tuple[int, int, int] | None = None,
                    source: str | Path = "<events>") -> np.ndarray:
    """Check ``events`` (see module doc) and return them as an `EVENT_DTYPE` array.

    ``sensor_size=None`` skips the coordinate upper bounds. Raises `EventFileError(source, reason)`.
    """
    source = str(source)
    cols = {name: _integral(col, name, source) for name, col in _columns(events, source).items()}
    n = len(cols["t"])
    if n == 0:
        raise EventFileError(source, "empty event stream (0 events)")
    t = cols["t"]
    if t.min() < 0:
        i = int(np.argmax(t < 0))
        raise EventFileError(source, f"negative timestamp t={t[i]} at event {i}")
    w, h, n_pol = sensor_size if sensor_size is not None else (None, None, None)
    for name, limit, axis in (("x", w, "width"), ("y", h, "height")):
        c = cols[name]
        bad = (c < 0) | (c >= (limit or 2**15))
        if bad.any():
            i = int(np.argmax(bad))
            where = f"outside the sensor {axis} {limit}" if limit else "outside [0, 32767]"
            raise EventFileError(source, f"{name}={c[i]} at event {i} is {where}")
    p = cols["p"]
    lo, hi = int(p.min()), int(p.max())
    if lo == -1 and hi <= 1 and not (p == 0).any():
        p = (p > 0).astype(np.int64)
    elif lo < 0 or hi > 1:
        raise EventFileError(source, f"polarity values {np.unique(p)[:6].tolist()} are not in {{0, 1}} or {{-1, +1}}")
    if n_pol is not None and n_pol > 1 and p.max() >= n_pol:
        raise EventFileError(source, f"polarity {int(p.max())} but the sensor has {n_pol} polarity channel(s)")
    down = np.flatnonzero(t[1:] < t[:-1])
    if len(down):
        i = int(down[0]) + 1
        raise EventFileError(source, f"timestamps are not sorted: t={t[i]} at event {i} after "
                                     f"t={t[i - 1]} ({len(down)} decreases; sort by t)")
    return make_events(cols["x"], cols["y"], t, p)
