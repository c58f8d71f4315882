#!/usr/bin/env bash
# Copy CIFAR-10 (JPEG tar, labels, lossless sprites: ~31 MB) from the shared data folder into
# the git-ignored .data/cifar10 of this checkout, which a device call carries (gpu/README.md).
#   bash gpu/prepare_data.sh [SOURCE]   # SOURCE default: $SNNZOO_DATA/cifar10, else ../shared/data/cifar10
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-${SNNZOO_DATA:-../shared/data}/cifar10}
dst=.data/cifar10
files=(cifar10_jpeg_q75.tar.gz cifar10_labels.js cifar10_batch_0.png cifar10_batch_1.png cifar10_batch_2.png
       cifar10_batch_3.png cifar10_batch_50.png)
for f in "${files[@]}"; do
    [[ -f $src/$f ]] || { echo "prepare_data.sh: error: $src/$f: not found" >&2; exit 1; }
done
git check-ignore -q "$dst" || { echo "prepare_data.sh: error: $dst is not git-ignored (add /.data/ to .gitignore)" >&2; exit 1; }
mkdir -p "$dst"
for f in "${files[@]}"; do
    cmp -s "$src/$f" "$dst/$f" || install -m 644 "$src/$f" "$dst/$f"
done
du -sh "$dst"
