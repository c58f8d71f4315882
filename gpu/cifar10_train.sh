#!/usr/bin/env bash
# One device call: train cifar10_compact on CIFAR-10 (bf16 + torch.compile) and bring back, in
# $OUT, the last epoch's weights and their evaluation on all 10,000 test images and on the 1,000
# exact (lossless) ones. gpu/README.md has the `run` call; the data comes from gpu/prepare_data.sh.
#
#   bash gpu/cifar10_train.sh                            # on the GPU machine
#   SMOKE=1 OUT=/tmp/smoke bash gpu/cifar10_train.sh     # the same steps on the CPU, 512 images
#
# Everything runs before DEADLINE = start + BUDGET_S:
#   1. probe: epoch 1 of the config (train.time_limit_s=0.001 ends the run after one epoch);
#   2. fit:   from epoch 1's measured throughput, E = 1 + the epochs that fit before
#             DEADLINE - RESERVE_S (at most the config's epochs); resume the run with --epochs E
#             and train.time_limit_s as a guard (a slow epoch ends it early, weights kept);
#   3. eval:  the exported fp16 weights (the last epoch), on all test images and on the exact ones.
# torch.compile: when a phase fails with it, that phase is rerun without (logged, and recorded
# in summary.json). Files in $OUT (8): model.safetensors config.json metrics.jsonl curves.png
# eval_test.json eval_test_exact.json summary.json run.log.
set -uo pipefail
T0=$(date +%s.%N)
cd "$(dirname "$0")/.."
: "${OUT:?OUT must name the output folder}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1
TEE=$!

CONFIG=${CONFIG:-cifar10_compact}
DATA=${DATA:-.data/cifar10}
WORK=${WORK:-$(mktemp -d)}
RUN=$WORK/run
PY=${PYTHON:-python3}
if [[ ${SMOKE:-0} == 1 ]]; then
    DEVICE=cpu AMP=none BUDGET_S=${BUDGET_S:-900} RESERVE_S=${RESERVE_S:-120}
    EXTRA=(--set data.limit=512 --set train.epochs=2 --set train.log_every=1 --threads "${THREADS:-2}")
    EVAL_EXTRA=(--limit 64)
else
    DEVICE=cuda AMP=bf16 BUDGET_S=${BUDGET_S:-520} RESERVE_S=${RESERVE_S:-75}
    EXTRA=() EVAL_EXTRA=()
fi
NAME=cifar10_train
source gpu/device_env.sh

COMPILE=--compile COMPILE_NOTE="used"
limit() {  # train.time_limit_s for a launch now: the probe ends after epoch 1, the fit at the deadline
    if [[ $1 == probe ]]; then echo 0.001; else "$PY" -c "import time; print(max(round($DEADLINE - time.time() - $RESERVE_S - 10), 1))"; fi
}
train() {  # train PHASE ARGS...: with --compile, and once more without if that fails
    local phase=$1; shift
    if [[ -n $COMPILE ]]; then
        "$PY" -m snnzoo train "$@" --set "train.time_limit_s=$(limit "$phase")" $COMPILE 2>&1 \
            | tee "$WORK/$phase.log" && return 0
        COMPILE= COMPILE_NOTE="failed in $phase: $(grep -E '^[A-Za-z_.]*(Error|Exception)' "$WORK/$phase.log" | tail -1)"
        log "torch.compile run failed (${COMPILE_NOTE}); again without --compile"
        if [[ -f $RUN/last.ckpt ]]; then set -- "$@" --resume; else rm -rf "$RUN"; fi
    fi
    "$PY" -m snnzoo train "$@" --set "train.time_limit_s=$(limit "$phase")" 2>&1 | tee "$WORK/$phase.log"
}
TRAIN=("$CONFIG" --data-root "$DATA" --out "$RUN" --device "$DEVICE" --amp "$AMP" --no-progress
       --set train.ckpt_every=1000000 "${EXTRA[@]}")

log "phase 1: epoch 1 of $CONFIG on $DEVICE (amp $AMP)"
P1_START=$(now)
train probe "${TRAIN[@]}" || { log "error: phase 1 failed"; exit 1; }
P1_WALL=$("$PY" -c "print($(now) - $P1_START)")

read -r EPOCHS FIT_NOTE < <("$PY" - "$RUN/metrics.jsonl" "$P1_WALL" "$DEADLINE" "$RESERVE_S" <<'PYEOF'
import json, statistics, sys, time
recs = [json.loads(line) for line in open(sys.argv[1])]
p1_wall, deadline, reserve = map(float, sys.argv[2:5])
cfg = next(r for r in recs if r["kind"] == "config")
ceiling, n_train = cfg["config"]["train"]["epochs"], cfg["data"]["n_train"]
epoch = [r for r in recs if r["kind"] == "epoch"][-1]
rates = [r["samples_per_s"] for r in recs if r["kind"] == "train"][1:]  # the first interval holds compilation
rate = statistics.median(rates) if rates else n_train / epoch["time_s"]
stop = [r for r in recs if r["kind"] == "stop"]
extra = max(stop[-1]["last_epoch_s"] - epoch["time_s"], 0.0) if stop else 0.0  # validation
epoch_s = 1.05 * (n_train / rate + extra) + 1.0  # + checkpoint, curves; 5 % margin
# phase 2 pays the process start, data loading and export again, and compiles from the warm
# inductor cache: counted as half of epoch 1's compilation (the CPU smoke run measured 20 %)
compile_s = max(epoch["time_s"] - n_train / rate, 0.0)
overhead = max(p1_wall - (stop[-1]["last_epoch_s"] if stop else epoch["time_s"]), 0.0) + 0.5 * compile_s
left = deadline - time.time() - reserve
epochs = max(1, min(ceiling, 1 + int((left - overhead) // epoch_s)))
print(epochs, f"{rate:.0f}_samples/s,_epoch~{epoch_s:.1f}s,_phase-2_start~{overhead:.0f}s")
PYEOF
)
EPOCHS=${EPOCHS:-1} FIT_NOTE=${FIT_NOTE:-no_fit}
log "fit: $EPOCHS epochs (${FIT_NOTE//_/ })"
if [[ $EPOCHS -gt 1 ]]; then
    log "phase 2: resume to epoch $EPOCHS"
    P2_START=$(now)
    train fit "${TRAIN[@]}" --resume --epochs "$EPOCHS" \
        || log "error: phase 2 failed; the folder keeps the last exported epoch"
fi

E_START=$(now)
log "eval: exported fp16 weights on $DEVICE (fp32, TF32 off)"
for which in all exact; do
    name=eval_test.json flag=()
    [[ $which == exact ]] && name=eval_test_exact.json flag=(--exact-only)
    NVIDIA_TF32_OVERRIDE=0 "$PY" -m snnzoo eval "$RUN" --dataset cifar10 --data-root "$DATA" --split test \
        --format json --no-progress --batch-size 500 --device "$DEVICE" "${flag[@]}" "${EVAL_EXTRA[@]}" \
        > "$OUT/$name" || log "error: eval ($which) failed"
done
for f in model.safetensors config.json metrics.jsonl curves.png; do
    cp "$RUN/$f" "$OUT/" || log "error: $RUN/$f missing"
done

"$PY" - "$OUT" "$WORK/env.json" "$COMPILE_NOTE" "$EPOCHS" "$FIT_NOTE" "$(now)" "$BUDGET_S" \
    "$P1_START" "${P2_START:-$E_START}" "$E_START" <<'PYEOF'
import hashlib, json, sys
from pathlib import Path
out, env, compile_note, epochs, fit_note, wall, budget = sys.argv[1:8]
p1, p2, ev = map(float, sys.argv[8:11])
out = Path(out)
def read(name):
    try:
        return json.loads((out / name).read_text())
    except (OSError, ValueError):
        return None
weights = out / "model.safetensors"
cfg = read("config.json") or {}
summary = {**json.loads(Path(env).read_text()), "compile": compile_note, "epochs_fitted": int(epochs),
           "fit": fit_note.replace("_", " "), "wall_s": float(wall), "budget_s": float(budget),
           "phases_s": {"start": p1, "probe": round(p2 - p1, 1), "fit": round(ev - p2, 1),
                        "eval_and_summary": round(float(wall) - ev, 1)},
           "stopped_early": cfg.get("stopped_early"), "train_metrics": cfg.get("metrics"),
           "weights_bytes": weights.stat().st_size if weights.is_file() else None,
           "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest() if weights.is_file() else None}
for key, name in (("test", "eval_test.json"), ("test_exact", "eval_test_exact.json")):
    r = read(name)
    summary[key] = r and {k: r[k] for k in ("accuracy", "correct", "n", "ci95", "exact_only")}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary, indent=2))
big = [p.name for p in out.iterdir() if p.stat().st_size > 16 * 2**20]
if big:
    print(f"error: over 16 MiB, will not come back: {big}")
PYEOF
log "done: $(ls "$OUT" | wc -l) files in $OUT"
exec >&- 2>&-
wait "$TEE"
