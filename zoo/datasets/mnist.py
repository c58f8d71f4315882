"""MNIST from the four original idx ``.gz`` files (LeCun et al.); never downloads.

idx format: big-endian magic ``0x00000803`` (images, then N, 28, 28) or ``0x00000801``
(labels, then N), followed by the uint8 payload.
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Callable

import numpy as np

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SOURCE = "http://yann.lecun.com/exdb/mnist/ (or any mirror: the four idx .gz files)"


def _read_idx(path: Path, magic: int, dims: int) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: MNIST file not found; get the four idx .gz files from "
                                f"{SOURCE} and put them in {path.parent}")
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable gzip file ({e})") from None
    head = np.frombuffer(raw[: 4 * (1 + dims)], dtype=">u4")
    if len(head) != 1 + dims or int(head[0]) != magic:
        raise ValueError(f"{path}: not an idx file with magic {magic:#010x}")
    shape = tuple(int(d) for d in head[1:])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 * (1 + dims))
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: expected {int(np.prod(shape))} bytes of data, found {data.size}")
    return data.reshape(shape)


def load_mnist(root: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N, 28, 28], labels int64 [N])`` of ``split`` ("train" or "test")
    from the idx ``.gz`` files in ``root``."""
    if split not in FILES:
        raise ValueError(f"unknown MNIST split {split!r}; use 'train' or 'test'")
    root = Path(root)
    img_name, lbl_name = FILES[split]
    images = _read_idx(root / img_name, 0x00000803, 3)
    labels = _read_idx(root / lbl_name, 0x00000801, 1).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(f"{root}: {len(images)} images but {len(labels)} labels in the {split} split")
    return images, labels


class MNIST:
    """Map-style MNIST: ``ds[i] -> (transform(image uint8 [28, 28]), label)``."""

    classes = [str(i) for i in range(10)]

    def __init__(self, root: str | Path, split: str = "train",
                 transform: Callable[[np.ndarray], object] | None = None) -> None:
        self.images, self.labels = load_mnist(root, split)
        self.split, self.transform = split, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[object, int]:
        img = self.images[i]
        return (self.transform(img) if self.transform else img), int(self.labels[i])
