"""N-MNIST (Orchard et al., 2015) from tonic's folder layout; never downloads."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from .base import DatasetNotFoundError, EventDataset, find_root

SOURCE = ("https://www.garrickorchard.com/datasets/n-mnist (Train.zip and Test.zip, "
          "or tonic's mirror https://data.mendeley.com/datasets/468j46mzdv)")
FIRST_SACCADE_US = 100_000  # as tonic: the first of the three 100 ms saccades


def mnist_index(path: str | Path) -> int:
    """The MNIST image a recording shows: ``<split>/<label>/00001.bin`` is image 0 of that MNIST
    split (Orchard et al. numbered the files from 1 in MNIST's order)."""
    return int(Path(path).stem) - 1


class NMNIST(EventDataset):
    """``root/Train/<digit>/<idx>.bin`` and ``root/Test/…`` (or ``root/NMNIST/…``, tonic's
    ``save_to``); files ordered as tonic (by folder, then name). ``first_saccade_only`` keeps
    the events with ``t < 100 ms``. ``ds[i] -> (events, label)``."""

    sensor_size = (34, 34, 2)
    classes = [str(i) for i in range(10)]

    def __init__(self, root: str | Path, train: bool = True, transform: Callable[[np.ndarray], Any] | None = None,
                 target_transform: Callable[[int], Any] | None = None, first_saccade_only: bool = False) -> None:
        super().__init__(transform, target_transform)
        split = "Train" if train else "Test"
        folder = find_root(root, split, f"NMNIST/{split}")
        if folder is not None:
            for d in sorted(p for p in folder.iterdir() if p.is_dir() and p.name in self.classes):
                files = sorted(d.glob("*.bin"))
                self.files += files
                self.targets += [int(d.name)] * len(files)
        if not self.files:
            raise DatasetNotFoundError.missing("N-MNIST", root, f"{split}/<digit>/*.bin recordings", SOURCE)
        self.train, self.first_saccade_only = train, first_saccade_only

    def read(self, i: int) -> np.ndarray:
        events = super().read(i)
        return events[events["t"] < FIRST_SACCADE_US] if self.first_saccade_only else events
