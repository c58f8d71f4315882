"""examples/train_nmnist_emulated.py kfold-train / kfold-summary end to end, tiny: a fold's run
trains on emulated streams plus the real recordings outside its fold and scores only that fold."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from snnzoo.zoo.training.kfold import fold_split, stratified_folds

EXAMPLE = Path(__file__).parents[1] / "examples" / "train_nmnist_emulated.py"
INIT = Path(__file__).parents[1] / "zoo" / "weights" / "nmnist_compact"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_one_fold_trains_outside_it_and_scores_it(tmp_path, shared_data, nmnist_root):
    out = tmp_path / "fold3"
    r = _run("kfold-train", "--mnist-root", str(shared_data / "mnist"), "--real-root", str(nmnist_root),
             "--out", str(out), "--fold", "3", "--init", str(INIT), "--train-limit", "16", "--real-repeat", "1",
             "--epochs", "1", "--cache", str(tmp_path / "cache"), "--set", "data.limit=40",
             "--set", "model_args.time_steps=4", "--set", "train.threads=1")
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = json.loads((out / "config.json").read_text())["data"]
    held = json.loads((out / "heldout.json").read_text())
    assert (held["fold"], held["k"], held["n"]) == (3, 5, 200) and 0 <= held["correct"] <= 200
    assert sum(a == b for a, b in zip(held["labels"], held["predicted"])) == held["correct"]
    assert held["labels"] == [int(Path(f).parent.name) for f in held["files"]]
    assert cfg["n_real_train"] == 800 and cfg["n_emulated_train"] == 16 and cfg["n_train"] == 816
    assert not set(cfg["real_train_files"]) & set(held["files"]) and cfg["real_heldout_files"] == held["files"]
    labels = np.array([int(Path(f).parent.name) for f in sorted(held["files"] + cfg["real_train_files"])])
    assert len(labels) == 1000
    _, ho = fold_split(stratified_folds(labels, 5, 0), 3)
    assert len(ho) == 200

    r = _run("kfold-summary", str(out))
    assert r.returncode == 1 and r.stderr.strip() == "Error: need each of folds 0..4 once, got [3]"


def test_baseline_folds_add_up_to_the_recorded_real_accuracy(nmnist_root):
    """kfold-baseline scores the shipped model on each held-out fold; the folds cover the 1,000
    recordings once, so their hits add up to the card's recorded eval of the same weights."""
    r = _run("kfold-baseline", "nmnist_compact", "--real-root", str(nmnist_root))
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    cards = EXAMPLE.parents[1] / "model_cards"
    recorded = json.loads((cards / "nmnist_compact" / "eval_real_nmnist.json").read_text())
    assert (out["n"], out["correct"]) == (recorded["n"], recorded["correct"]) and out["n"] == 1000
    assert [f["n"] for f in out["per_fold"]] == [200] * 5
    assert out["per_class"] == recorded["per_class"] and out["confusion"] == recorded["confusion"]
    # nmnist_compact_real's paired baseline is of its init, stage 5 (kept in git, not in the tree): the
    # same folds, and hits that add up
    base = json.loads((cards / "nmnist_compact_real" / "kfold_baseline_nmnist_compact.json").read_text())
    assert [f["n"] for f in base["per_fold"]] == [200] * 5 and base["k"] == 5
    assert sum(f["correct"] for f in base["per_fold"]) == base["correct"] == int(np.trace(base["confusion"]))


def test_val_and_eval_refuse_bad_seed_lists_naming_the_option():
    for command, option in (("val", "--seeds"), ("eval", "--twins")):
        extra = ("--mnist-root",) if command == "val" else ("--data-root",)
        r = _run(command, "nmnist_compact", *extra, ".", option, "1,a")
        assert r.returncode == 2 and f"Invalid value for {option}: '1,a'" in r.stderr
