"""CIFAR10-DVS (Li et al., 2017) from tonic's folder layout, with a seeded per-class split."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .base import DatasetNotFoundError, EventDataset, find_root

SOURCE = ("https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671 (the original AEDAT 2.0 "
          "files) or tonic's AEDAT4 conversion (https://figshare.com/ndownloader/files/38023437)")
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def per_class_split(targets: list[int], seed: int, test_fraction: float) -> np.ndarray:
    """Boolean test mask: in each class (files in name order) a ``np.random.default_rng([seed, c])``
    permutation puts ``round(test_fraction · n_c)`` samples in the test split."""
    targets_a = np.asarray(targets)
    test = np.zeros(len(targets_a), bool)
    for c in np.unique(targets_a):
        members = np.flatnonzero(targets_a == c)
        n_test = int(round(test_fraction * len(members)))
        test[np.random.default_rng([seed, int(c)]).permutation(members)[:n_test]] = True
    return test


class CIFAR10DVS(EventDataset):
    """``root/<class>/*.aedat4`` (tonic) or ``*.aedat`` (original DVS128 AEDAT 2.0), also under
    ``root/CIFAR10DVS/``. There is no official split: ``train=True`` / ``False`` take a seeded
    per-class ``1 − test_fraction`` : ``test_fraction`` split (`per_class_split`), ``train=None``
    all files. ``split`` records it (seed, fraction, sha256 of the test files) for checkpoints."""

    sensor_size = (128, 128, 2)
    classes = CLASSES

    def __init__(self, root: str | Path, train: bool | None = True, transform: Callable[[np.ndarray], Any] | None = None,
                 target_transform: Callable[[int], Any] | None = None, seed: int = 0,
                 test_fraction: float = 0.1) -> None:
        super().__init__(transform, target_transform)
        base = find_root(root, "CIFAR10DVS", ".")
        files, targets = [], []
        for c, name in enumerate(CLASSES):
            folder = base / name if base is not None else None
            if folder is not None and folder.is_dir():
                found = sorted(p for p in folder.iterdir() if p.suffix in (".aedat4", ".aedat"))
                files += found
                targets += [c] * len(found)
        if not files:
            raise DatasetNotFoundError.missing("CIFAR10-DVS", root, "<class>/*.aedat4 or <class>/*.aedat for the classes "
                                       + ", ".join(CLASSES), SOURCE)
        test = per_class_split(targets, seed, test_fraction)
        keep = np.ones(len(files), bool) if train is None else (~test if train else test)
        self.files = [f for f, k in zip(files, keep) if k]
        self.targets = [t for t, k in zip(targets, keep) if k]
        test_names = "\n".join(f"{f.parent.name}/{f.name}" for f, t in zip(files, test) if t)
        self.split = {"method": "per_class_random", "seed": seed, "test_fraction": test_fraction,
                      "n_train": int((~test).sum()), "n_test": int(test.sum()),
                      "test_files_sha256": hashlib.sha256(test_names.encode()).hexdigest()}
