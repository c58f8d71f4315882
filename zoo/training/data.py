"""Datasets as in-memory uint8 tensors, held-out splits, batch augmentation.

Event streams are binned once with the model's binning spec (``config["input"]["binning"]``)
into ``uint8 [N, T, P, H, W]`` (counts saturate at 255); images are kept as ``uint8 [N, C, H, W]``.
Each epoch then only indexes, augments and converts batches.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ...runtime.binning import bin_from_spec


@dataclass
class Frames:
    """A dataset held in memory: ``x`` uint8 samples, ``y`` int64 labels."""

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]
    kind: str  # "events" or "image"

    def __len__(self) -> int:
        return len(self.y)


def open_dataset(name: str, root: str | Path, split: str) -> Any:
    """Dataset ``name`` at ``root`` (:func:`snnzoo.zoo.datasets.get_dataset`)."""
    from ..datasets import get_dataset

    return get_dataset(name, root, split)


def _image_chw(img: Any) -> np.ndarray:
    """A uint8 image ``[H, W, C]`` (or ``[H, W]``) as ``[C, H, W]``."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {a.dtype}")
    return np.ascontiguousarray(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))


def load_frames(dataset: Any, input_spec: dict[str, Any], indices: np.ndarray | None = None,
                desc: str = "reading", progress: bool = True) -> Frames:
    """Read (and for events, bin) ``dataset[i]`` for ``i`` in ``indices`` into memory."""
    idx = np.arange(len(dataset)) if indices is None else np.asarray(indices)
    kind = input_spec["kind"]
    xs, ys = [], np.empty(len(idx), np.int64)
    for j, i in enumerate(tqdm(idx, desc=desc, unit="sample", leave=False, mininterval=1.0, disable=not progress)):
        sample, label = dataset[int(i)]
        if kind == "events":
            frames = bin_from_spec(sample, tuple(dataset.sensor_size), input_spec["binning"])
            xs.append(np.minimum(frames, 255).astype(np.uint8))
        else:
            xs.append(_image_chw(sample))
        ys[j] = int(label)
    if not xs:
        raise ValueError("the dataset split is empty")
    x = torch.from_numpy(np.stack(xs))
    return Frames(x, torch.from_numpy(ys), list(dataset.classes), kind)


def subset_indices(n: int, limit: int, seed: int) -> np.ndarray:
    """All of ``range(n)``, or a seeded random subset of ``limit`` of them (sorted)."""
    if limit <= 0 or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:limit])


def holdout_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified held-out split: per class, a seeded ``round(fraction · n_c)`` samples go to
    validation. Returns sorted ``(train_idx, val_idx)``."""
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        val.append(rng.permutation(members)[: int(round(fraction * len(members)))])
    val_idx = np.sort(np.concatenate(val)) if val else np.array([], np.int64)
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    return train_idx, val_idx


def indices_digest(idx: np.ndarray) -> str:
    """A short fingerprint of an index set (recorded with the split)."""
    return hashlib.sha256(np.asarray(idx, np.int64).tobytes()).hexdigest()[:16]


def batch_generator(*keys: int) -> torch.Generator:
    """A generator seeded from ``keys`` (seed, epoch, batch, rank): the same batch always gets
    the same augmentation, so a resumed run repeats an uninterrupted one."""
    state = int(np.random.SeedSequence(list(keys)).generate_state(1, np.uint64)[0] >> 1)
    return torch.Generator().manual_seed(state)


def _pad_crop(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """Per sample, translate the last two dims by a random ``(dy, dx) ∈ [−pad, pad]²``
    with zero fill (= zero-pad by ``pad`` and crop at a random offset)."""
    h, w = x.shape[-2:]
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (len(x), 2), generator=gen)
    return torch.stack([padded[i, ..., oy:oy + h, ox:ox + w] for i, (oy, ox) in enumerate(offsets.tolist())])


def _rotate_zoom(x: torch.Tensor, degrees: float, zoom: float, gen: torch.Generator) -> torch.Tensor:
    """Per sample, rotate by ``θ ~ U(−degrees, degrees)`` and scale by ``s ~ U(1 − zoom, 1 + zoom)``
    about the frame centre, all leading dims (time, polarity) alike: output pixel ``p`` takes the
    input pixel nearest to ``R(−θ)·p / s`` (centred coordinates), zero outside. Nearest neighbour:
    spike counts are moved (a zoom also repeats or skips a few pixels), never blended."""
    n = len(x)
    theta = (torch.rand(n, generator=gen) * 2 - 1) * (degrees * math.pi / 180)
    s = 1 + (torch.rand(n, generator=gen) * 2 - 1) * zoom
    cos, sin = torch.cos(theta) / s, torch.sin(theta) / s
    zero = torch.zeros(n)
    affine = torch.stack([torch.stack([cos, sin, zero], 1), torch.stack([-sin, cos, zero], 1)], 1)
    flat = x.reshape(n, -1, *x.shape[-2:]).float()
    grid = torch.nn.functional.affine_grid(affine, list(flat.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(flat, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return out.to(x.dtype).reshape(x.shape)


def augment(x: torch.Tensor, kind: str, data_cfg: dict[str, Any], gen: torch.Generator) -> torch.Tensor:
    """Events: random rotation of up to ``rotate`` degrees and zoom of up to ``±zoom`` (off by
    default), then a random spatial shift of up to ``shift`` pixels (all T frames alike).
    Images: random crop after ``crop_padding`` zero padding, random horizontal flip, then cutout
    (DeVries & Taylor, 2017): a ``cutout``-sided square of zeros centred on a uniformly drawn pixel,
    clipped at the border."""
    if kind == "events":
        if data_cfg.get("rotate", 0) > 0 or data_cfg.get("zoom", 0) > 0:
            x = _rotate_zoom(x, data_cfg.get("rotate", 0), data_cfg.get("zoom", 0), gen)
        return _pad_crop(x, data_cfg["shift"], gen) if data_cfg["shift"] > 0 else x
    if data_cfg["crop_padding"] > 0:
        x = _pad_crop(x, data_cfg["crop_padding"], gen)
    if data_cfg["flip"]:
        flip = torch.rand(len(x), generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if data_cfg.get("cutout", 0) > 0:
        x = _cutout(x, data_cfg["cutout"], gen)
    return x


def _cutout(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Zero, per sample, the pixels within ``size/2`` of a random centre (a square, clipped)."""
    h, w = x.shape[-2:]
    cy = torch.randint(0, h, (len(x), 1, 1), generator=gen)
    cx = torch.randint(0, w, (len(x), 1, 1), generator=gen)
    lo = size // 2
    ys, xs = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    inside = (ys >= cy - lo) & (ys < cy - lo + size) & (xs >= cx - lo) & (xs < cx - lo + size)
    return x.masked_fill(inside[:, None], 0)


def to_input(x: torch.Tensor, input_spec: dict[str, Any], device: torch.device) -> torch.Tensor:
    """uint8 samples → the model's float input: event counts as is; images
    ``(x · scale − mean) / std`` per channel."""
    x = x.to(device, non_blocking=True).float()
    if input_spec["kind"] == "image":
        mean = torch.tensor(input_spec["mean"], device=device).view(-1, 1, 1)
        std = torch.tensor(input_spec["std"], device=device).view(-1, 1, 1)
        x = (x * input_spec.get("scale", 1.0) - mean) / std
    return x
