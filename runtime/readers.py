"""Event file readers → ``(events, sensor_size)``; usable without torch."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .events import make_events


def read_nmnist_bin(path: str | Path) -> tuple[np.ndarray, tuple[int, int, int]]:
    """N-MNIST ``.bin`` (also DVS128 Gesture ``.bs2``): 5 bytes per event — byte0 = x,
    byte1 = y, byte2 bit 7 = polarity, t = 23 bits (byte2 bits 6–0, byte3, byte4) in µs."""
    raw = np.fromfile(path, dtype=np.uint8)
    raw = raw[: len(raw) // 5 * 5].reshape(-1, 5).astype(np.int64)
    t = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    ev = make_events(raw[:, 0], raw[:, 1], t, raw[:, 2] >> 7)
    return ev, (34, 34, 2)
