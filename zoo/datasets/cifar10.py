"""CIFAR-10 (Krizhevsky, 2009): from the pickled python batches, or from the JPEG tar plus
lossless PNG sprites of ``../shared/data/cifar10``; never downloads.

Pickled batches (``cifar-10-batches-py/data_batch_{1..5}``, ``test_batch``): unpickling is the
format itself, so it runs through `SafeUnpickler`, which resolves only the numpy array
constructors (and ``_codecs.encode`` for Python-2 byte strings) — anything else is refused.

JPEG + sprites: ``cifar10_jpeg_q75.tar.gz`` holds all 60,000 images as
``{train,test}/<class>/NNNN.jpg`` (JPEG quality 75, lossy), each class's files in CIFAR order;
``cifar10_labels.js`` holds the 50,000 train labels in order, then the first 1,000 test labels.
So the original order is restored for all of train (the k-th image of class c is
``train/c/k.jpg``) and for test images 0–999; the other 9,000 test images follow, class by
class (``original_index = -1``). The PNG sprites (1000 rows × 1024 RGB pixels, one image per row)
replace the JPEG pixels of train 0–3,999 (``cifar10_batch_{0..3}.png``) and test 0–999
(``cifar10_batch_50.png``): ``exact[i]`` is True where the pixels are lossless.
"""
from __future__ import annotations

import functools
import io
import pickle
import re
import tarfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from .base import DatasetNotFoundError, find_root

SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html (CIFAR-10 python version, cifar-10-python.tar.gz)"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TAR, LABELS_JS = "cifar10_jpeg_q75.tar.gz", "cifar10_labels.js"
SPRITES = {"train": [(f"cifar10_batch_{k}.png", 1000 * k) for k in range(4)], "test": [("cifar10_batch_50.png", 0)]}


class SafeUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays; refuses every other global."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name} (only numpy arrays are allowed)")
        return super().find_class(module, name)


def load_pickled_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One python batch → ``(images uint8 [N, 32, 32, 3], labels int64 [N])``."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            d = SafeUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a CIFAR-10 python batch ({e})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: not a CIFAR-10 python batch (top level is {type(d).__name__}, not a dict)")
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
    data, labels = d.get("data"), d.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: 'data' must be a uint8 array [N, 3072]")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(data),) or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{path}: 'labels' must hold {len(data)} integers in 0..9")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


@functools.lru_cache(maxsize=1)
def _jpeg_members(tar_path: Path, mtime: float) -> dict[str, bytes]:
    """``{"train/cat/0000.jpg": bytes, …}`` of the whole tar (read once per process)."""
    with tarfile.open(tar_path) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf if m.isfile() and m.name.endswith(".jpg")}


def _sprite_rows(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        rows = np.asarray(im.convert("RGB"))
    if rows.shape != (1000, 1024, 3):
        raise ValueError(f"{path}: expected a 1024×1000 RGB sprite, got {rows.shape}")
    return rows.reshape(1000, 32, 32, 3)


def _decode_jpeg(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


class CIFAR10:
    """Map-style CIFAR-10: ``ds[i] -> (transform(image uint8 [32, 32, 3]), label)``.

    ``source``: ``"pickle"``, ``"jpeg"`` or ``"auto"`` (pickled batches when present). Attributes
    ``targets``, ``exact`` (bool per image: lossless pixels), ``original_index`` (CIFAR index, or
    −1 where unknown) and ``data`` (all images, uint8 ``[N, 32, 32, 3]``, decoded on first use).
    """

    classes = CLASSES

    def __init__(self, root: str | Path, train: bool = True, transform: Callable[[np.ndarray], Any] | None = None,
                 target_transform: Callable[[int], Any] | None = None, source: str = "auto") -> None:
        self.root, self.train = Path(root), train
        self.transform, self.target_transform = transform, target_transform
        batches = find_root(root, "cifar-10-batches-py", ".")
        has_pickle = batches is not None and (batches / "data_batch_1").is_file()
        has_jpeg = (self.root / TAR).is_file() and (self.root / LABELS_JS).is_file()
        if source == "auto":
            source = "pickle" if has_pickle else "jpeg" if has_jpeg else ""
        if source not in ("pickle", "jpeg") or not (has_pickle if source == "pickle" else has_jpeg):
            raise DatasetNotFoundError.missing(
                "CIFAR-10", root, "cifar-10-batches-py/data_batch_1..5 and test_batch (python version), "
                f"or {TAR} with {LABELS_JS} and the cifar10_batch_*.png sprites", SOURCE)
        self.source = source
        self._data: np.ndarray | None = None
        if source == "pickle":
            names = [f"data_batch_{k}" for k in range(1, 6)] if train else ["test_batch"]
            parts = [load_pickled_batch(batches / n) for n in names]
            self._data = np.concatenate([p[0] for p in parts])
            self.targets = np.concatenate([p[1] for p in parts]).tolist()
            self.exact = np.ones(len(self.targets), bool)
            self.original_index = np.arange(len(self.targets))
        else:
            self._index_jpeg()

    def _index_jpeg(self) -> None:
        split = "train" if self.train else "test"
        labels = [int(v) for v in re.findall(r"\d+", (self.root / LABELS_JS).read_text().split("[", 1)[1])]
        members = _jpeg_members(self.root / TAR, (self.root / TAR).stat().st_mtime)
        per_class = {c: sorted(n for n in members if n.startswith(f"{split}/{name}/"))
                     for c, name in enumerate(CLASSES)}
        known = labels[:50_000] if split == "train" else labels[50_000:]
        taken = dict.fromkeys(range(10), 0)
        self.files, self.targets, original = [], [], []
        for i, c in enumerate(known):
            self.files.append(per_class[c][taken[c]])
            self.targets.append(c)
            original.append(i)
            taken[c] += 1
        for c in range(10):
            rest = per_class[c][taken[c]:]
            self.files += rest
            self.targets += [c] * len(rest)
            original += [-1] * len(rest)
        self.original_index = np.array(original)
        self._jpegs = members
        self._sprites: dict[int, np.ndarray] = {}
        for name, first in SPRITES[split]:
            if (self.root / name).is_file():
                rows = _sprite_rows(self.root / name)
                for k in range(1000):
                    self._sprites[first + k] = rows[k]
        self.exact = np.array([o in self._sprites for o in original], bool)

    def __len__(self) -> int:
        return len(self.targets)

    def image(self, i: int) -> np.ndarray:
        """Image ``i``, uint8 ``[32, 32, 3]`` (lossless where ``exact[i]``)."""
        if self._data is not None:
            return self._data[i]
        if self.exact[i]:
            return self._sprites[int(self.original_index[i])]
        return _decode_jpeg(self._jpegs[self.files[i]])

    @property
    def data(self) -> np.ndarray:
        if self._data is None:
            self._data = np.stack([self.image(i) for i in tqdm(range(len(self)), desc="decoding CIFAR-10",
                                                                unit="img", leave=False, mininterval=1.0)])
        return self._data

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        img, target = self.image(i), self.targets[i]
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __repr__(self) -> str:
        return (f"CIFAR10({'train' if self.train else 'test'}, {len(self)} images from {self.source}, "
                f"{int(self.exact.sum())} exact)")
