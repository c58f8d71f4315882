"""The one event representation: a numpy structured array with fields ``x, y, t, p``
(tonic's convention; ``t`` in microseconds, ``p`` in {0, 1}) plus a sensor size ``(W, H, P)``."""
from __future__ import annotations

import numpy as np

EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i1")])


def make_events(x, y, t, p) -> np.ndarray:
    """Build a structured event array from four equally long columns."""
    n = len(t)
    ev = np.empty(n, dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p
    return ev
