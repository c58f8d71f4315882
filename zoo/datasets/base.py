"""What the event datasets share: the missing-data error and a tonic-style map-style base."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...errors import SnnzooError
from ...runtime.errors import EventFileError
from ...runtime.readers import read_events


class DatasetNotFoundError(SnnzooError, FileNotFoundError):
    """The data is not where it was looked for; the message says where to get it and put it."""

    def __init__(self, message: str, root: str | Path | None = None) -> None:
        super().__init__(message)
        self.root = None if root is None else Path(root)

    @classmethod
    def missing(cls, name: str, root: str | Path, expected: str, source: str) -> DatasetNotFoundError:
        return cls(f"{name} not found under {root}: expected {expected}. Nothing is downloaded; "
                   f"get it from {source} and put it there (or pass root=…).", root)


def find_root(root: str | Path, *candidates: str) -> Path | None:
    """The first of ``root/c`` (``"."`` for root itself) that is a directory, else None."""
    for c in candidates:
        p = Path(root) / c
        if p.is_dir():
            return p
    return None


class EventDataset:
    """Map-style dataset of event files: ``ds[i] -> (transform(events), target_transform(label))``.

    Subclasses set ``sensor_size``, ``classes`` and fill ``files`` / ``targets``; events are
    read and validated by `snnzoo.runtime.readers.read_events` (structured ``x, y, t, p``).
    """

    sensor_size: tuple[int, int, int]
    classes: list[str]

    def __init__(self, transform: Callable[[np.ndarray], Any] | None = None,
                 target_transform: Callable[[int], Any] | None = None) -> None:
        self.transform, self.target_transform = transform, target_transform
        self.files: list[Path] = []
        self.targets: list[int] = []

    def __len__(self) -> int:
        return len(self.files)

    def read(self, i: int) -> np.ndarray:
        """The events of sample ``i``, untransformed; the file's sensor must be the dataset's."""
        events, sensor, _ = read_events(self.files[i], sensor_size=self.sensor_size)
        if tuple(sensor[:2]) != tuple(self.sensor_size[:2]):
            raise EventFileError(self.files[i], f"sensor {sensor[0]}×{sensor[1]} is not the dataset's "
                                                f"{self.sensor_size[0]}×{self.sensor_size[1]}")
        return events

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        events, target = self.read(i), self.targets[i]
        if self.transform is not None:
            events = self.transform(events)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return events, target

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} samples, sensor {self.sensor_size}, {len(self.classes)} classes)"
