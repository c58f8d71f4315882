r"""Metrics: Wilson confidence interval, confusion matrix, the ``metrics.jsonl`` log.

Wilson score interval for k successes in n trials, ``p̂ = k/n``, ``z = 1.96`` (95 %):

    centre = (p̂ + z²/2n) / (1 + z²/n)
    half   = z / (1 + z²/n) · √(p̂(1 − p̂)/n + z²/4n²)
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import atomic_write_text


def wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of the proportion ``k / n``; ``(0, 1)`` when ``n = 0``."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``cm[i, j]`` = number of samples of true class i predicted as j."""
    idx = np.asarray(y_true, np.int64) * num_classes + np.asarray(y_pred, np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class(cm: np.ndarray, classes: list[str]) -> dict[str, dict[str, Any]]:
    """``{"per_class": {c: accuracy or None}, "per_class_n": {c: n}}`` from confusion matrix ``cm``
    (rows: true class); None for a class with no sample."""
    rows = cm.sum(1)
    return {"per_class": {c: (float(cm[i, i] / rows[i]) if rows[i] else None) for i, c in enumerate(classes)},
            "per_class_n": {c: int(rows[i]) for i, c in enumerate(classes)}}


class MetricsLog:
    """Append-only JSON-lines log; each record carries the global ``step``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop the records past ``step`` (those a killed run wrote after its last checkpoint)."""
        if not self.path.exists():
            return
        keep = [line for line in self.path.read_text().splitlines()
                if line.strip() and _step_of(line) <= step]
        atomic_write_text(self.path, "".join(line + "\n" for line in keep))


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return 1 << 62  # a torn last line: drop it
