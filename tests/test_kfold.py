"""K-fold estimates (zoo/training/kfold.py): stratified, seeded, disjoint folds; pooled scores."""
from __future__ import annotations

import numpy as np
import pytest

from snnzoo.zoo.training.kfold import fold_split, stratified_folds, summarize
from snnzoo.zoo.training.metrics import wilson_interval


def test_folds_are_stratified_seeded_and_cover_every_sample_once():
    labels = np.repeat(np.arange(10), [97, 116, 99, 93, 105, 92, 94, 117, 87, 100])  # the real N-MNIST counts
    fold = stratified_folds(labels, 5, seed=0)
    assert np.array_equal(fold, stratified_folds(labels, 5, seed=0))
    assert not np.array_equal(fold, stratified_folds(labels, 5, seed=1))
    assert sorted(np.bincount(fold)) == [200] * 5
    for c in range(10):
        per = np.bincount(fold[labels == c], minlength=5)
        assert per.max() - per.min() <= 1, (c, per)
    held = [fold_split(fold, f)[1] for f in range(5)]
    assert np.array_equal(np.sort(np.concatenate(held)), np.arange(len(labels)))
    for f in range(5):
        tr, ho = fold_split(fold, f)
        assert len(np.intersect1d(tr, ho)) == 0 and len(tr) + len(ho) == len(labels)
    tr, ho = fold_split(fold, -1)
    assert len(tr) == len(labels) and len(ho) == 0


def test_bad_folds_are_refused():
    with pytest.raises(ValueError, match="k >= 2"):
        stratified_folds(np.zeros(10), 1, 0)
    with pytest.raises(ValueError, match="3 samples cannot fill 5 folds"):
        stratified_folds(np.zeros(3), 5, 0)
    with pytest.raises(ValueError, match="fold 5 is not in 0..4"):
        fold_split(stratified_folds(np.zeros(10), 5, 0), 5)


def test_summary_pools_the_held_out_counts():
    recs = [{"fold": f, "k": 3, "n": n, "correct": c} for f, n, c in ((2, 30, 29), (0, 35, 35), (1, 35, 33))]
    s = summarize(recs)
    assert (s["n"], s["correct"]) == (100, 97) and s["accuracy"] == 0.97
    assert s["ci95"] == list(wilson_interval(97, 100))
    assert [r["fold"] for r in s["per_fold"]] == [0, 1, 2] and s["per_fold"][2]["accuracy"] == 29 / 30
    with pytest.raises(ValueError, match=r"need each of folds 0..2 once, got \[0, 2\]"):
        summarize([recs[0], recs[1]])
    with pytest.raises(ValueError, match="different k"):
        summarize([*recs, {"fold": 3, "k": 4, "n": 1, "correct": 1}])


def test_summary_pools_per_sample_predictions_into_a_confusion_matrix():
    recs = [{"fold": 0, "k": 2, "n": 3, "correct": 2, "labels": [0, 1, 1], "predicted": [0, 1, 0]},
            {"fold": 1, "k": 2, "n": 2, "correct": 2, "labels": [2, 0], "predicted": [2, 0]}]
    s = summarize(recs, classes=["a", "b", "c"])
    assert s["confusion"] == [[2, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert s["per_class"] == {"a": 1.0, "b": 0.5, "c": 1.0} and s["per_class_n"] == {"a": 2, "b": 2, "c": 1}
    assert "confusion" not in summarize(recs)  # no class names
    without = {k: v for k, v in recs[1].items() if k != "labels"}
    assert "confusion" not in summarize([recs[0], without], classes=["a", "b", "c"])  # a fold without samples
    with pytest.raises(ValueError, match="disagree with their counts"):
        summarize([recs[0], {**recs[1], "correct": 1}], classes=["a", "b", "c"])
