"""K-fold estimates for recipes that train on part of a small evaluation pool.

A model trained on some of the pool's samples cannot be scored on them. The k-fold estimate trains
one model per fold on the other k−1 folds and scores it only on its held-out fold; the estimate is
the held-out hits summed over the folds divided by the pool size, ``acc = Σ_f c_f / Σ_f n_f``,
with a Wilson interval on that pooled count.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .metrics import confusion_matrix, per_class, wilson_interval


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold id in ``[0, k)`` per sample: per class, a seeded permutation dealt round-robin, so each
    fold holds ``⌊n_c/k⌋`` or ``⌈n_c/k⌉`` samples of class ``c``."""
    labels = np.asarray(labels)
    if k < 2:
        raise ValueError(f"k-fold needs k >= 2, got {k}")
    if len(labels) < k:
        raise ValueError(f"{len(labels)} samples cannot fill {k} folds")
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), np.int64)
    start = 0  # continue the deal across classes so that fold sizes differ by at most one
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        fold[members] = (start + np.arange(len(members))) % k
        start = (start + len(members)) % k
    return fold


def fold_files(files: Sequence[str | Path], idx: np.ndarray, root: str | Path) -> list[str]:
    """The files at ``idx``, relative to the dataset ``root`` (``Train/<label>/<n>.bin``): what a fold
    model's record lists as seen or held out."""
    return [str(Path(files[i]).relative_to(root)) for i in idx]


def fold_split(fold: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, heldout_idx)`` of fold ``f``; ``f = -1`` trains on all and holds out none."""
    if f == -1:
        return np.arange(len(fold)), np.arange(0)
    k = int(fold.max()) + 1
    if not 0 <= f < k:
        raise ValueError(f"fold {f} is not in 0..{k - 1} (or -1 for all)")
    return np.flatnonzero(fold != f), np.flatnonzero(fold == f)


def summarize(records: Iterable[dict[str, Any]], classes: list[str] | None = None) -> dict[str, Any]:
    """Pool per-fold held-out scores ``{"fold", "k", "n", "correct", ...}`` into the estimate.
    Refuses an incomplete or repeated set of folds, or folds of different k. With ``classes`` and
    per-sample ``labels``/``predicted`` in every record, also the pooled ``confusion`` (rows: true
    class) and ``per_class`` accuracy, as ``snnzoo eval`` reports them."""
    recs = sorted(records, key=lambda r: r["fold"])
    ks = {r["k"] for r in recs}
    if len(ks) != 1:
        raise ValueError(f"the folds come from different k: {sorted(ks)}")
    k = ks.pop()
    got = [r["fold"] for r in recs]
    if got != list(range(k)):
        raise ValueError(f"need each of folds 0..{k - 1} once, got {got}")
    n = sum(r["n"] for r in recs)
    c = sum(r["correct"] for r in recs)
    out = {"k": k, "n": n, "correct": c, "accuracy": c / n, "ci95": list(wilson_interval(c, n)),
           "per_fold": [{"fold": r["fold"], "n": r["n"], "correct": r["correct"],
                         "accuracy": r["correct"] / r["n"]} for r in recs]}
    if classes is not None and all("labels" in r and "predicted" in r for r in recs):
        y = np.concatenate([np.asarray(r["labels"], np.int64) for r in recs])
        p = np.concatenate([np.asarray(r["predicted"], np.int64) for r in recs])
        if len(y) != n or int((y == p).sum()) != c:
            raise ValueError("the folds' per-sample predictions disagree with their counts")
        cm = confusion_matrix(y, p, len(classes))
        out.update(classes=list(classes), confusion=cm.tolist(), **per_class(cm, classes))
    return out
