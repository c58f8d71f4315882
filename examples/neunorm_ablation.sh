#!/usr/bin/env bash
# NeuNorm on/off ablation on the real N-MNIST recordings: nmnist_compact, T=4, 6 epochs,
# 700 training / 301 held-out recordings (data.val_fraction=0.3, seeded stratified split),
# three seeds per arm, last-epoch validation accuracy from each run's log.
set -euo pipefail
root=${1:-../shared/data/nmnist}
for seed in 0 1 2; do
  for nn in true false; do
    snnzoo train nmnist_compact --data-root "$root" --epochs 6 --seed $seed --threads 1 --no-progress \
      --set model_args.neunorm=$nn --set model_args.time_steps=4 --set data.val_fraction=0.3 \
      --out runs/ablation/nn_${nn}_s${seed} > runs/ablation/nn_${nn}_s${seed}.log 2>&1 &
  done
  wait
done
grep -H "epoch 6/6" runs/ablation/*.log
