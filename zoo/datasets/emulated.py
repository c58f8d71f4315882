"""EmulatedNMNIST: N-MNIST-like event streams of MNIST digits (:mod:`snnzoo.zoo.emulator`).

The 1,000 real N-MNIST recordings shipped for validation are those of MNIST **train** images
0–999, so the default ``train`` split here is MNIST train images 1000–59999 (``REAL_RECORDED``
excluded); ``test`` is all 10,000 MNIST test images. Sample ``i`` is the stream of MNIST index
``indices[i]`` emulated with randomness ``[seed, index]``: the same in any order or batch.

Streams are emulated a chunk at a time (vectorised); :meth:`EmulatedNMNIST.frames` bins them and,
with a ``cache_dir``, stores each chunk's frames as ``.npz`` (uint8 counts, or bit-packed binary
frames) under a key hashing the emulator parameters, randomisation, seed, indices and binning.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from ...runtime.binning import bin_events
from ..emulator import SENSOR_SIZE, EmulatorParams, Randomization, emulate
from .mnist import load_mnist

REAL_RECORDED = range(0, 1000)  # MNIST train images whose real N-MNIST recordings we hold
CACHE_VERSION = 2  # 2: per-sample products in the emulator (batch-independent streams)
NEUTRAL_PARAMS = {"scale": 1.0, "gamma": 1.0}  # EmulatorParams fields added after version 2, at their no-op value


def default_indices(split: str, n: int) -> np.ndarray:
    """MNIST indices of an emulated split: train minus ``REAL_RECORDED``, or all of test."""
    if split == "train":
        return np.arange(REAL_RECORDED.stop, n)
    if split == "test":
        return np.arange(n)
    raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")


class EmulatedNMNIST:
    """``ds[i] -> (events, label)``: the emulated stream of MNIST ``split`` image ``indices[i]``.

    Args:
        root: folder with the MNIST idx ``.gz`` files.
        split: ``"train"`` or ``"test"`` (MNIST's).
        indices: MNIST indices to emulate (default: :func:`default_indices`).
        seed: emulation seed.
        params: emulator constants (default: calibrated on the real recordings).
        randomization: per-sample domain randomisation (default: none).
        cache_dir: where :meth:`frames` stores binned chunks (None: no disk cache).
        chunk: images emulated together.
        transform: applied to each event stream by ``__getitem__``.
        train: ``get_dataset``'s form of ``split`` (True: "train", False: "test"); overrides it.
    """

    sensor_size = SENSOR_SIZE
    classes = [str(i) for i in range(10)]

    def __init__(self, root: str | Path, split: str = "train", indices: Sequence[int] | None = None,
                 seed: int = 0, params: EmulatorParams = EmulatorParams(), cache_dir: str | Path | None = None,
                 randomization: Randomization | None = None,
                 chunk: int = 1000, transform: Callable[[np.ndarray], object] | None = None,
                 train: bool | None = None) -> None:
        split = split if train is None else ("train" if train else "test")
        images, labels = load_mnist(root, split)
        idx = default_indices(split, len(images)) if indices is None else np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1 or (len(idx) and (idx.min() < 0 or idx.max() >= len(images))):
            raise ValueError(f"indices must lie in [0, {len(images)}) for MNIST {split}")
        self.images, self.indices, self.labels = images, idx, labels[idx]
        self.split, self.seed, self.params = split, int(seed), params
        self.randomization = randomization if randomization is not None and randomization.active else None
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.chunk, self.transform = int(chunk), transform
        self._held: tuple[int, list[np.ndarray]] | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def _chunk_events(self, c: int) -> list[np.ndarray]:
        if self._held is None or self._held[0] != c:
            sel = self.indices[c * self.chunk:(c + 1) * self.chunk]
            self._held = (c, emulate(self.images[sel], self.seed, sel, self.params, self.randomization))
        return self._held[1]

    def events(self, i: int) -> np.ndarray:
        """The event stream of sample ``i`` (structured ``x, y, t, p``, sorted by ``t``)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"sample {i} out of range for {len(self)} samples")
        i %= len(self)
        return self._chunk_events(i // self.chunk)[i % self.chunk]

    def __getitem__(self, i: int) -> tuple[object, int]:
        ev = self.events(i)
        return (self.transform(ev) if self.transform else ev), int(self.labels[i])

    def _cache_key(self, sel: np.ndarray, time_steps: int, mode: str) -> str:
        params = asdict(self.params)
        for name, neutral in NEUTRAL_PARAMS.items():  # added later: at their neutral value the keys stay as they were
            if params[name] == neutral:
                del params[name]
        spec = {"v": CACHE_VERSION, "split": self.split, "seed": self.seed, "params": params,
                "T": time_steps, "mode": mode, "idx": hashlib.sha256(sel.tobytes()).hexdigest()}
        if self.randomization is not None:  # absent when off: the keys of unrandomised chunks stay as they were
            spec["randomization"] = asdict(self.randomization)
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]

    def frames(self, time_steps: int = 8, mode: str = "binary",
               progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """All samples binned into ``time_steps`` frames: ``(uint8 [N, T, 2, 34, 34], labels)``
        (counts saturate at 255; ``mode="binary"`` gives 0/1)."""
        n_chunks = -(-len(self) // self.chunk)
        out = np.empty((len(self), time_steps, 2, SENSOR_SIZE[1], SENSOR_SIZE[0]), np.uint8)
        for c in tqdm(range(n_chunks), desc=f"emulating {self.split}", unit="chunk", disable=not progress):
            lo, hi = c * self.chunk, min((c + 1) * self.chunk, len(self))
            sel = self.indices[lo:hi]
            path = None
            if self.cache_dir is not None:
                path = self.cache_dir / f"{self._cache_key(sel, time_steps, mode)}.npz"
                if path.is_file():
                    with np.load(path, allow_pickle=False) as z:
                        data = z["frames"]
                        out[lo:hi] = (np.unpackbits(data, axis=-1, count=SENSOR_SIZE[0])
                                      if mode == "binary" else data)
                    continue
            for j, ev in enumerate(self._chunk_events(c)):
                f = bin_events(ev, SENSOR_SIZE, n_time_bins=time_steps, mode=mode)
                out[lo + j] = np.minimum(f, 255)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                data = np.packbits(out[lo:hi], axis=-1) if mode == "binary" else out[lo:hi]
                tmp = path.with_suffix(".tmp.npz")
                np.savez_compressed(tmp, frames=data, indices=sel)
                tmp.replace(path)
        self._held = None
        return out, self.labels.copy()
