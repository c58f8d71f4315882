"""Frame strips of the samples a model gets most wrong (``snnzoo eval --hardest N --hardest-dir DIR``).

The hardest samples are those with the lowest margin, the true class's score minus the best other
class's score: the misclassified first (most confidently wrong first), then the narrowest correct
calls. Each gets one PNG, ``hardest_<rank>_<index>.png``: its T binned frames side by side, ON
events red, OFF events blue (both: magenta), titled with the dataset index, the true and the
predicted class and their scores. ``index.json`` lists them in rank order.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .checkpoint import atomic_write, atomic_write_text
from .plots import _pyplot

INDEX_FILE = "index.json"
PATTERN = "hardest_*.png"
RULE = ("lowest margin (the true class's score minus the best other class's score): the misclassified "
        "first, most confidently wrong first")


def check_dir(path: str | Path) -> Path:
    """``path`` as a folder to write strips into: absent (it is created) or a folder."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise NotADirectoryError(f"{p}: not a folder (--hardest-dir)")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(f"{parent}: not a folder (--hardest-dir)")
            break
    return p


def hardest(scores: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` samples with the lowest margin; ties keep dataset order."""
    if n < 1:
        raise ValueError(f"--hardest must be >= 1, got {n}")
    s = np.asarray(scores, np.float64)
    rows = np.arange(len(s))
    true = s[rows, labels]
    others = s.copy()
    others[rows, labels] = -np.inf
    return np.argsort(true - others.max(1), kind="stable")[:n]


def polarity_rgb(frames: np.ndarray) -> np.ndarray:
    """``[T, P, H, W]`` event counts → ``[T, H, W, 3]`` in [0, 1]: ON (P = 1) red, OFF (P = 0) blue,
    each scaled by the sample's largest count; one polarity (P = 1) in grey."""
    f = np.asarray(frames, np.float32)
    f = f / max(float(f.max()), 1.0)
    if f.shape[1] == 1:
        return np.repeat(f[:, 0, :, :, None], 3, axis=3)
    off, on = f[:, 0], f[:, 1]
    return np.stack([on, np.zeros_like(on), off], axis=3)


def plot_strip(frames: np.ndarray, path: str | Path, title: str, dpi: int = 100) -> None:
    """One sample's frames ``[T, P, H, W]`` side by side in a PNG at ``path``."""
    plt = _pyplot()
    rgb = polarity_rgb(frames)
    t = len(rgb)
    fig, axes = plt.subplots(1, t, figsize=(0.9 * t, 1.45), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(rgb[i], interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"t={i}", fontsize=6, labelpad=1)
    fig.suptitle(title, fontsize=7)
    fig.tight_layout(pad=0.2, w_pad=0.2, rect=(0, 0, 1, 0.93))
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    plt.close(fig)


def write_hardest(out_dir: str | Path, frames: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                  indices: np.ndarray, classes: Sequence[str], n: int, files: Sequence[Any] | None = None,
                  about: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Strips of the ``n`` hardest of the samples (``frames`` ``[N, T, P, H, W]``, their ``labels``,
    class ``scores`` ``[N, C]`` and dataset ``indices``; ``files[index]`` names a sample's file) in
    ``out_dir``, replacing the folder's earlier strips, and ``index.json`` (``about`` + the list,
    returned)."""
    out = check_dir(out_dir)
    if np.asarray(frames).ndim != 5:
        raise ValueError(f"frame strips need event frames [N, T, P, H, W], got shape {tuple(np.shape(frames))}")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob(PATTERN):
        old.unlink()
    samples = []
    for rank, pos in enumerate(hardest(scores, labels, n), 1):
        index, true, pred = int(indices[pos]), int(labels[pos]), int(np.argmax(scores[pos]))
        png = f"hardest_{rank:02d}_{index}.png"
        row = {"rank": rank, "png": png, "index": index,
               "file": _short(files[index]) if files is not None else None,
               "label": classes[true], "predicted": classes[pred],
               "scores": {c: round(float(v), 6) for c, v in zip(classes, scores[pos])}}
        plot_strip(np.asarray(frames[pos]), out / png,
                   f"#{index}{' ' + row['file'] if row['file'] else ''}: true {classes[true]} "
                   f"({scores[pos][true]:.3f}), predicted {classes[pred]} ({scores[pos][pred]:.3f})")
        samples.append(row)
    atomic_write_text(out / INDEX_FILE, json.dumps({**(about or {}), "rule": RULE, "samples": samples},
                                                   indent=1) + "\n")
    return samples


def _short(file: Any) -> str:
    """A sample file as its last three path parts (``Train/8/00123.bin``)."""
    return "/".join(Path(file).parts[-3:])
