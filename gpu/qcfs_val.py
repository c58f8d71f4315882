"""Score converted QCFS networks on their twins' held-out validation split (the selection rule of
configs/cifar10_qcfs_vgg*_ann.toml): the split is rebuilt from the twin's training config (pool,
stratified fraction, seed) and its digest checked against the one the training run recorded.

    python gpu/qcfs_val.py SNN_FOLDER --data-root DIR [--device cuda] [--steps 1,2,4,8]   # JSON to stdout
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from snnzoo.zoo.training.data import (holdout_split, indices_digest, load_frames, open_dataset,
                                      subset_indices)
from snnzoo.zoo.training.evaluate import load_runner


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", default="1,2,4,8")
    ap.add_argument("--batch-size", type=int, default=500)
    args = ap.parse_args()
    runner = load_runner(args.folder, torch.device(args.device))
    cfg = runner.config
    train_cfg, split = cfg["training"], cfg["data"]
    d = train_cfg["data"]
    ds = open_dataset(d["dataset"], args.data_root, "train")
    pool = subset_indices(len(ds), d["limit"], d["split_seed"])
    _, va = holdout_split(np.asarray(ds.targets)[pool], d["val_fraction"], d["split_seed"])
    if indices_digest(pool[va]) != split["val_digest"]:
        raise SystemExit(f"{args.folder}: the rebuilt validation split differs from the recorded one")
    frames = load_frames(ds, cfg["input"], pool[va], progress=False)
    steps = [int(s) for s in args.steps.split(",")]
    correct = dict.fromkeys(steps, 0)
    for start in range(0, len(frames), args.batch_size):
        runner(frames.x[start:start + args.batch_size])
        y = frames.y[start:start + args.batch_size].numpy()
        for t, s in runner.step_scores(steps).items():
            correct[t] += int((s.argmax(1) == y).sum())
    n = len(frames)
    print(json.dumps({"folder": args.folder, "n_val": n, "val_digest": split["val_digest"],
                      "val_acc": {str(t): correct[t] / n for t in steps},
                      "spikes_per_sample": runner.spikes_per_sample()}, indent=2))


if __name__ == "__main__":
    main()
