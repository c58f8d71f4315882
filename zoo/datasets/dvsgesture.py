"""DVS128 Gesture (Amir et al., 2017) in tonic's preprocessed layout; never downloads."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...runtime.errors import EventFileError
from ...runtime.events import validate_events
from .base import DatasetNotFoundError, EventDataset, find_root

SOURCE = ("tonic's preprocessed release: https://figshare.com/ndownloader/files/38022171 "
          "(ibmGestureTrain.tar.gz) and .../38020584 (ibmGestureTest.tar.gz)")
CLASSES = ["Hand clapping", "Right hand wave", "Left hand wave", "Right arm cw", "Right arm ccw",
           "Left arm cw", "Left arm ccw", "Arm roll", "Air drums", "Air guitar", "Other gestures"]


class DVSGesture(EventDataset):
    """``root/ibmGestureTrain/user<NN>_<lighting>/<label>.npy`` and ``ibmGestureTest`` (or under
    ``root/DVSGesture/``): each file a numeric ``(N, 4)`` array with columns ``x, y, p, t`` and
    ``t`` in **milliseconds** (tonic's format; read with ``allow_pickle=False``, t → µs).
    Attributes ``users`` and ``lighting`` per sample, as tonic."""

    sensor_size = (128, 128, 2)
    classes = CLASSES

    def __init__(self, root: str | Path, train: bool = True, transform: Callable[[np.ndarray], Any] | None = None,
                 target_transform: Callable[[int], Any] | None = None) -> None:
        super().__init__(transform, target_transform)
        split = "ibmGestureTrain" if train else "ibmGestureTest"
        folder = find_root(root, split, f"DVSGesture/{split}")
        self.users: list[int] = []
        self.lighting: list[str] = []
        for d in sorted(folder.iterdir()) if folder is not None else []:
            if not (d.is_dir() and d.name.startswith("user") and "_" in d.name):
                continue
            user, light = d.name.split("_", 1)
            for f in sorted(d.glob("*.npy"), key=lambda p: (len(p.stem), p.stem)):
                if f.stem.isdigit() and int(f.stem) < len(CLASSES):
                    self.files.append(f)
                    self.targets.append(int(f.stem))
                    self.users.append(int(user[4:]))
                    self.lighting.append(light)
        if not self.files:
            raise DatasetNotFoundError.missing("DVS128 Gesture", root, f"{split}/user<NN>_<lighting>/<label>.npy", SOURCE)
        self.train = train

    def read(self, i: int) -> np.ndarray:
        path = self.files[i]
        try:
            a = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise EventFileError(path, f"not a readable numeric .npy array ({e})") from None
        if a.dtype.kind not in "biuf" or a.ndim != 2 or a.shape[1] != 4:
            raise EventFileError(path, f"expected an (N, 4) numeric array [x, y, p, t(ms)], got {a.shape} {a.dtype}")
        a = a.astype(np.int64) if a.dtype.kind != "f" else a
        plain = np.stack([a[:, 3] * 1000, a[:, 0], a[:, 1], a[:, 2]], 1)  # → [t µs, x, y, p]
        return validate_events(plain, self.sensor_size, path)
