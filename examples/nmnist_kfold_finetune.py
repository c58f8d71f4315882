"""k-fold estimate of fine-tuning the shipped `nmnist_compact` on real N-MNIST recordings.

The 1,000 real recordings (MNIST train 0–999) are split into 5 folds by index (i mod 5). For each
fold, the published weights are fine-tuned on the other 800 recordings and scored on the fold's
200, which that model never saw. The recipe is fixed before any fold is scored: Adam, lr 1e-4,
5 epochs, batch 32, random shifts of up to 2 px, the model's own loss (MSE on voted rates), seed 0.
The estimate is the pooled accuracy over the 5 × 200 held-out scores.

    python examples/nmnist_kfold_finetune.py --data-root ../shared/data/nmnist [--epochs 5] [--threads 1]
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from tqdm import tqdm

import snnzoo
from snnzoo.zoo.training.config import load_config
from snnzoo.zoo.training.data import augment, batch_generator, load_frames, open_dataset, to_input
from snnzoo.zoo.training.metrics import wilson_interval
from snnzoo.zoo.training.optim import loss_fn

FOLDS = 5


@torch.no_grad()
def correct(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, spec: dict) -> int:
    model.eval()
    preds = torch.cat([model(to_input(x[i:i + 100], spec, torch.device("cpu"))).argmax(1)
                       for i in range(0, len(x), 100)])
    return int((preds == y).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the per-fold results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config("nmnist_compact")
    spec = snnzoo.create_model("nmnist_compact").config["input"]
    frames = load_frames(open_dataset("nmnist", args.data_root, "train"), spec, desc="reading real recordings")
    x, y = frames.x, frames.y
    loss = loss_fn(cfg, 10)
    data_cfg = {**cfg["data"], "shift": 2}
    rows = []
    for fold in range(FOLDS):
        test = np.arange(len(y)) % FOLDS == fold
        tr_idx, te_idx = np.flatnonzero(~test), np.flatnonzero(test)
        torch.manual_seed(0)
        model = snnzoo.create_model("nmnist_compact", pretrained=True)
        before = correct(model, x[te_idx], y[te_idx], spec)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        order_gen = torch.Generator().manual_seed(fold)
        for epoch in range(args.epochs):
            model.train()
            order = torch.from_numpy(tr_idx)[torch.randperm(len(tr_idx), generator=order_gen)]
            for b in tqdm(range(0, len(order), 32), desc=f"fold {fold} epoch {epoch + 1}", leave=False):
                idx = order[b:b + 32]
                xb = augment(x[idx], "events", data_cfg, batch_generator(0, fold, epoch, b))
                value = loss(model(to_input(xb, spec, torch.device("cpu"))), y[idx])
                opt.zero_grad(set_to_none=True)
                value.backward()
                opt.step()
        after = correct(model, x[te_idx], y[te_idx], spec)
        rows.append({"fold": fold, "n": len(te_idx), "shipped_correct": before, "finetuned_correct": after})
        print(f"fold {fold}: held-out {len(te_idx)}: shipped {before / len(te_idx):.3f} -> fine-tuned "
              f"{after / len(te_idx):.3f}", flush=True)
    n = sum(r["n"] for r in rows)
    for key in ("shipped_correct", "finetuned_correct"):
        k = sum(r[key] for r in rows)
        lo, hi = wilson_interval(k, n)
        print(f"{key.split('_')[0]:>10}: {k}/{n} = {100 * k / n:.2f} % (95 % CI {100 * lo:.2f}-{100 * hi:.2f} %)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"recipe": vars(args), "folds": rows}, f, indent=2)


if __name__ == "__main__":
    main()
