#!/usr/bin/env bash
# cifar10_qcfs end to end: train the QCFS ANN twin (bf16 autocast on CPU), convert it to the IF
# network, evaluate it on all 10,000 CIFAR-10 test images at T = 1, 2, 4, 8 and on the 1,000
# exact-pixel ones, export it to ONNX and check the export on 64 real test images.
#   bash examples/cifar10_qcfs.sh [DATA_ROOT] [RUN_DIR]
# Re-running resumes the training where it stopped (run folder outside the work tree).
# The card's evals are these JSON files (model_cards/cifar10_qcfs/).
set -euo pipefail
data=${1:-../shared/data/cifar10}
run=${2:-${XDG_CACHE_HOME:-$HOME/.cache}/snnzoo/runs/cifar10_qcfs_ann}
snn=${run%/}_snn_T8
cards=model_cards/cifar10_qcfs

# 1. the ANN twin: 16 epochs, last epoch kept (configs/cifar10_qcfs_ann.toml)
snnzoo train configs/cifar10_qcfs_ann.toml --data-root "$data" --out "$run" --threads 1 --resume

# 2. conversion: same weights, IF neurons with soft reset, T = 8
snnzoo convert "$run" -o "$snn" -T 8

# 3. evaluation (test images are scored only now, after the recipe and the rule were fixed); one
#    T = 8 run also gives T = 1, 2, 4 (its first steps, exactly the model at those T)
mkdir -p "$cards"
snnzoo eval "$snn" --dataset cifar10 --data-root "$data" --split test --steps-sweep 1,2,4 --format json \
  --no-progress --plot "$cards/confusion_test.png" > "$cards/eval_test.json" &
snnzoo eval "$snn" --dataset cifar10 --data-root "$data" --split test --exact-only --format json --no-progress \
  > "$cards/eval_test_exact.json"
snnzoo eval "$run" --dataset cifar10 --data-root "$data" --split test --format json --no-progress \
  > "$cards/eval_test_ann_twin.json"
wait

# 4. ONNX export checked against PyTorch on 64 lossless test images (cut from the PNG sprite)
imgs=$(mktemp -d)
python - "$data" "$imgs" <<'PY'
import sys
from pathlib import Path
import numpy as np
from PIL import Image
rows = np.asarray(Image.open(Path(sys.argv[1]) / "cifar10_batch_50.png").convert("RGB"))
for i in range(64):
    Image.fromarray(rows[i].reshape(32, 32, 3)).save(Path(sys.argv[2]) / f"test_{i:04d}.png")
PY
snnzoo export "$snn" -o "$snn/model.onnx" --check-data "$imgs"
rm -rf "$imgs"
