"""PNG figures (matplotlib, Agg backend): training curves and confusion matrices."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import atomic_write


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(steps: list[dict[str, Any]], epochs: list[dict[str, Any]], path: str | Path,
                title: str = "") -> None:
    """Loss and accuracy against epochs: step-interval train records (thin), per-epoch train
    and validation (markers)."""
    plt = _pyplot()
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(10, 4))
    if steps:
        x = [r["epoch_float"] for r in steps]
        ax_l.plot(x, [r["loss"] for r in steps], color="C0", alpha=0.35, lw=1, label="train (interval)")
        ax_a.plot(x, [r["acc"] for r in steps], color="C0", alpha=0.35, lw=1, label="train (interval)")
    if epochs:
        x = [r["epoch"] for r in epochs]
        ax_l.plot(x, [r["train_loss"] for r in epochs], "o-", color="C0", label="train")
        ax_a.plot(x, [r["train_acc"] for r in epochs], "o-", color="C0", label="train")
        val = [r for r in epochs if r.get("val_acc") is not None]
        if val:
            ax_l.plot([r["epoch"] for r in val], [r["val_loss"] for r in val], "s-", color="C1", label="val")
            ax_a.plot([r["epoch"] for r in val], [r["val_acc"] for r in val], "s-", color="C1", label="val")
    ax_l.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_a.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    for ax in (ax_l, ax_a):
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def plot_confusion(cm: np.ndarray, classes: list[str], path: str | Path, title: str = "") -> None:
    """Row-normalised confusion matrix with counts in the cells."""
    plt = _pyplot()
    n = len(classes)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title or "confusion matrix")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
