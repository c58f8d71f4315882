"""Datasets loading from a local root; never downloading.

``get_dataset(name, root, split)`` builds one by name; a missing dataset raises
`DatasetNotFoundError` (a FileNotFoundError) saying where to get the data and where to put it.
Event datasets return ``(events, label)`` with tonic's structured ``x, y, t, p`` arrays.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from .base import DatasetNotFoundError, EventDataset
from .cifar10 import CIFAR10
from .cifar10dvs import CIFAR10DVS
from .dvsgesture import DVSGesture
from .nmnist import NMNIST

__all__ = ["CIFAR10", "CIFAR10DVS", "DATASETS", "DVSGesture", "DatasetNotFoundError", "EventDataset",
           "NMNIST", "default_root", "get_dataset"]

# name -> ("module:class", default sub-folder of the data root)
DATASETS: dict[str, tuple[str, str]] = {
    "nmnist": ("snnzoo.zoo.datasets.nmnist:NMNIST", "nmnist"),
    "cifar10dvs": ("snnzoo.zoo.datasets.cifar10dvs:CIFAR10DVS", "cifar10dvs"),
    "dvsgesture": ("snnzoo.zoo.datasets.dvsgesture:DVSGesture", "dvsgesture"),
    "cifar10": ("snnzoo.zoo.datasets.cifar10:CIFAR10", "cifar10"),
    "mnist": ("snnzoo.zoo.datasets.mnist:MNIST", "mnist"),
    "emulatednmnist": ("snnzoo.zoo.datasets.emulated:EmulatedNMNIST", "mnist"),
}


def default_root(name: str) -> Path:
    """``$SNNZOO_DATA/<folder>``, else ``./data/<folder>``."""
    return Path(os.environ.get("SNNZOO_DATA", "data")) / DATASETS[name][1]


def get_dataset(name: str, root: str | Path | None = None, split: str = "train", **kwargs: Any) -> Any:
    """Dataset ``name`` (see `DATASETS`) at ``root`` (default `default_root`), ``split`` "train"
    or "test" (CIFAR10-DVS also "all"); ``kwargs`` go to the class (transform, seed, …).
    ``tonic:NAME`` builds ``tonic.datasets.NAME`` on ``root`` offline and ``tonic-cache:NAME`` reads a
    tonic disk cache folder, both with our event validation (`snnzoo.zoo.datasets.fromtonic`)."""
    if name.startswith(("tonic:", "tonic-cache:")):
        from .fromtonic import open_tonic, open_tonic_cache

        kind, tname = name.split(":", 1)
        if root is None:
            raise ValueError(f"{name}: give the data root")
        return open_tonic(tname, root, split, **kwargs) if kind == "tonic" else open_tonic_cache(tname, root)
    key = name.lower().replace("-", "").replace("_", "")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    if split not in ("train", "test") and not (key == "cifar10dvs" and split == "all"):
        raise ValueError(f"unknown split {split!r} for {name}; use 'train' or 'test'")
    module, attr = DATASETS[key][0].split(":")
    cls = getattr(importlib.import_module(module), attr)
    root = default_root(key) if root is None else root
    try:
        if key == "mnist":
            return cls(root, split=split, **kwargs)
        return cls(root, train=None if split == "all" else split == "train", **kwargs)
    except DatasetNotFoundError:
        raise
    except FileNotFoundError as e:  # a loader of its own (MNIST idx files) that says what is missing
        raise DatasetNotFoundError(f"{e}. Nothing is downloaded.", root) from None
