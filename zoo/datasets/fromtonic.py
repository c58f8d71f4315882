"""tonic datasets as snnzoo datasets (``pip install tonic``; imported only here, lazily).

``TonicDataset(ds)`` wraps any tonic-style map dataset (``ds[i] -> (events, target)``, with
``sensor_size``): every sample's events go through the same validation as our event files
(`snnzoo.runtime.events.validate_events`: integral fields, coordinates on the sensor, polarity
in {0, 1} or {−1, +1}, sorted timestamps), and the failure names the dataset and index. Training
and evaluation then bin them with the model's own spec, so a tonic ``transform`` must leave
events (not frames).

``get_dataset("tonic:NMNIST", root, split)`` (``--dataset tonic:NMNIST --data-root ROOT``) builds
``tonic.datasets.NMNIST(save_to=ROOT, train=split == "train")``, but never lets tonic download:
tonic reads ``ROOT/NMNIST/`` and, where its own check of that folder fails (for N-MNIST: the
archive ``train.zip``/``test.zip`` present and at least 10,000 extracted ``.bin`` files), we raise
`DatasetNotFoundError` instead of its download. ``get_dataset("tonic-cache:NMNIST", CACHE)``
reads a ``tonic.DiskCachedDataset`` folder (``<i>_<copy>.hdf5`` files of raw events) offline,
with the sensor size and classes of ``tonic.datasets.NMNIST``; the folder is one split's cache, so
the split name is not used.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from ...runtime.events import validate_events
from .base import DatasetNotFoundError


def _tonic():
    try:
        import tonic
    except ImportError:
        raise ImportError("tonic datasets need the `tonic` package: pip install tonic") from None
    return tonic


class TonicDataset:
    """A tonic-style dataset whose events are validated as our files are: ``ds[i] -> (events, label)``.

    ``sensor_size`` and ``classes`` default to the wrapped dataset's (``classes``: ``"0"…"n−1"``
    when it has none).
    """

    def __init__(self, dataset: Any, sensor_size: tuple[int, int, int] | None = None,
                 classes: list[str] | None = None, name: str | None = None) -> None:
        size = sensor_size or getattr(dataset, "sensor_size", None)
        if size is None or len(size) != 3:
            raise ValueError(f"{name or type(dataset).__name__}: give sensor_size (W, H, P); the dataset has none")
        self.dataset, self.sensor_size = dataset, tuple(int(v) for v in size)
        self.name = name or type(dataset).__name__
        found = classes or getattr(dataset, "classes", None)
        self.classes = list(found) if found else [str(i) for i in range(int(max(self._targets())) + 1)]

    def _targets(self) -> list[int]:
        t = getattr(self.dataset, "targets", None)
        return list(t) if t is not None and len(t) else [int(self.dataset[i][1]) for i in range(len(self))]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        events, target = self.dataset[i]
        if not (isinstance(events, np.ndarray) and events.dtype.names):
            raise ValueError(f"{self.name}[{i}]: expected a structured event array (x, y, t, p), got "
                             f"{type(events).__name__} {getattr(events, 'shape', '')}; snnzoo bins the "
                             "events itself, so leave framing transforms out")
        return validate_events(events, self.sensor_size, source=f"{self.name}[{i}]"), int(np.asarray(target))

    def __repr__(self) -> str:
        return f"TonicDataset({self.name}, {len(self)} samples, sensor {self.sensor_size})"


def _dataset_class(name: str):
    tonic = _tonic()
    cls = getattr(tonic.datasets, name, None)
    if not isinstance(cls, type):
        known = sorted(n for n in dir(tonic.datasets) if isinstance(getattr(tonic.datasets, n), type))
        raise ValueError(f"unknown tonic dataset {name!r}; tonic.datasets has {', '.join(known)}")
    return cls


def open_tonic(name: str, root: str | Path, split: str = "train", **kwargs: Any) -> TonicDataset:
    """``tonic.datasets.<name>(save_to=root, train=…)`` wrapped, offline (see the module docstring)."""
    cls = _dataset_class(name)
    params = inspect.signature(cls).parameters
    if "train" in params:
        if split not in ("train", "test"):
            raise ValueError(f"unknown split {split!r} for tonic:{name}; use 'train' or 'test'")
        kwargs["train"] = split == "train"
    elif split != "all":
        raise ValueError(f"tonic's {name} has no train/test split; pass split 'all'")

    def refuse(self) -> None:
        wants = ", ".join(f"{a} {getattr(self, a)!r}" for a in ("filename", "folder_name") if getattr(self, a, None))
        raise DatasetNotFoundError(
            f"tonic's {name} finds no complete copy in {self.location_on_system} (its check wants {wants or 'its files'}"
            f"{'; N-MNIST: the archive and at least 10,000 extracted .bin files' if name == 'NMNIST' else ''}). "
            "Nothing is downloaded; put tonic's download there, or use --dataset "
            f"{name.lower()} (snnzoo's reader of the same folder layout).", root)

    if not Path(root).is_dir():
        raise DatasetNotFoundError(f"tonic:{name}: data root {root} is not a folder. Nothing is downloaded.", root)
    with mock.patch.object(cls, "download", refuse):
        ds = cls(save_to=str(root), **kwargs)
    return TonicDataset(ds, name=f"tonic:{name}")


def open_tonic_cache(name: str, root: str | Path) -> TonicDataset:
    """A ``tonic.DiskCachedDataset`` folder of raw events, with ``tonic.datasets.<name>``'s sensor and classes."""
    tonic = _tonic()
    cls = _dataset_class(name)
    folder = Path(root)
    if not folder.is_dir() or not any(folder.glob("*_0.hdf5")):
        raise DatasetNotFoundError(f"tonic-cache:{name}: no tonic disk cache (<index>_<copy>.hdf5 files) in "
                                   f"{folder}. Nothing is downloaded.", root)
    ds = tonic.DiskCachedDataset(None, cache_path=str(folder))
    classes = [str(i) for i in range(len(cls.classes))] if getattr(cls, "classes", None) else None
    return TonicDataset(ds, sensor_size=cls.sensor_size, classes=classes, name=f"tonic-cache:{name}")
