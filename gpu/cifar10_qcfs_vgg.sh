#!/usr/bin/env bash
# One device call (issue 13): train the two QCFS twins of `cifar10_qcfs_vgg` side by side on one
# GPU (8 and 4 quantisation levels, configs/cifar10_qcfs_vgg{,_l4}_ann.toml), convert both to IF
# networks at T = 8, score them on the held-out validation split (the selection rule) and on the
# test set, and bring back in $OUT both networks' weights and records. gpu/README.md has the call.
#
#   bash gpu/cifar10_qcfs_vgg.sh                          # on the GPU machine
#   SMOKE=1 OUT=/tmp/smoke bash gpu/cifar10_qcfs_vgg.sh   # the same steps on the CPU, 1,000 images
#
# Everything runs before DEADLINE = start + BUDGET_S:
#   1. probe: epoch 1 of both twins at once (train.time_limit_s=0.001 ends each after one epoch);
#   2. fit:   from epoch 1's throughput (both running), E = 1 + the epochs that fit before
#             DEADLINE - RESERVE_S (at most the configs' 60); resume both to E, with
#             train.time_limit_s as a guard (a slow epoch ends a run early, its weights kept);
#   3. post:  per twin, `snnzoo convert -T 8`, validation accuracy at T = 1, 2, 4, 8
#             (gpu/qcfs_val.py), `snnzoo eval` of the spiking net on all test images (with the
#             T sweep) and on the 1,000 exact ones, and of the twin itself.
# RUNS_SPEC="NAME:CONFIG ..." picks the twins (default: l8 and l4 above). Files in $OUT, per
# NAME: NAME.safetensors (the spiking net's fp16 weights), NAME.tar (configs, metrics, curves,
# eval and val JSON); and summary.json, run.log.
set -uo pipefail
T0=$(date +%s.%N)
cd "$(dirname "$0")/.."
: "${OUT:?OUT must name the output folder}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1
TEE=$!

DATA=${DATA:-.data/cifar10}
WORK=${WORK:-$(mktemp -d)}
PY=${PYTHON:-python3}
# NAME:CONFIG pairs; the default is the first call's pair (8 vs 4 levels).
RUNS_SPEC=${RUNS_SPEC:-"l8:configs/cifar10_qcfs_vgg_ann.toml l4:configs/cifar10_qcfs_vgg_l4_ann.toml"}
# NAME:CONFIG:INIT trains from INIT's weights (`--init`): a converted IF network to fine-tune with
# STBP (configs/*_stbp.toml); such a run is already spiking, so post scores it without converting.
RUNS=() && declare -A CONFIG INIT
for spec in $RUNS_SPEC; do
    IFS=: read -r run config init <<< "$spec"
    RUNS+=("$run") && CONFIG[$run]=$config && INIT[$run]=$init
done
if [[ ${SMOKE:-0} == 1 ]]; then
    DEVICE=cpu BUDGET_S=${BUDGET_S:-600} RESERVE_S=${RESERVE_S:-200} THREADS=1
    EXTRA=(--set data.limit=1000 --set data.val_fraction=0.1 --set train.log_every=1)
    EVAL_EXTRA=(--limit 100)
else
    DEVICE=cuda BUDGET_S=${BUDGET_S:-530} RESERVE_S=${RESERVE_S:-100} THREADS=$(( 12 / ${#RUNS[@]} > 4 ? 12 / ${#RUNS[@]} : 4 ))
    EXTRA=() EVAL_EXTRA=()
fi
NAME=cifar10_qcfs_vgg
source gpu/device_env.sh

train() {  # train RUN PHASE ARGS...: one twin, logged to $WORK/RUN.PHASE.log
    local run=$1 phase=$2; shift 2
    local limit=0.001
    [[ $phase == fit ]] && limit=$("$PY" -c "import time; print(max(round($DEADLINE - time.time() - $RESERVE_S - 5), 1))")
    local init=() && [[ -n ${INIT[$run]} ]] && init=(--init "${INIT[$run]}")
    "$PY" -m snnzoo train "${CONFIG[$run]}" --data-root "$DATA" --out "$WORK/$run" --device "$DEVICE" \
        "${init[@]}" --threads "$THREADS" --no-progress --set train.ckpt_every=1000000 --set "train.time_limit_s=$limit" \
        "${EXTRA[@]}" "$@" > "$WORK/$run.$phase.log" 2>&1
    local rc=$?
    tail -n 3 "$WORK/$run.$phase.log" | sed "s/^/  [$run $phase] /"
    return $rc
}

log "phase 1: epoch 1 of both twins on $DEVICE"
P1_START=$(now)
pids=()
for r in "${RUNS[@]}"; do train "$r" probe & pids+=($!); done
wait "${pids[@]}"  # (a bare `wait` would also wait for the never-ending tee above)
P1_WALL=$("$PY" -c "print($(now) - $P1_START)")
for r in "${RUNS[@]}"; do
    [[ -f $WORK/$r/last.ckpt ]] || { log "error: phase 1 of $r failed"; cat "$WORK/$r.probe.log"; }
done

read -r EPOCHS FIT_NOTE < <("$PY" - "$P1_WALL" "$DEADLINE" "$RESERVE_S" "${RUNS[@]/#/$WORK/}" <<'PYEOF'
import json, statistics, sys, time
p1_wall, deadline, reserve = map(float, sys.argv[1:4])
fits = []
for path in sys.argv[4:]:
    try:
        recs = [json.loads(line) for line in open(path + "/metrics.jsonl")]
    except OSError:
        continue
    cfg = next(r for r in recs if r["kind"] == "config")
    ceiling, n_train = cfg["config"]["train"]["epochs"], cfg["data"]["n_train"]
    epoch = [r for r in recs if r["kind"] == "epoch"][-1]
    rates = [r["samples_per_s"] for r in recs if r["kind"] == "train"][2:]  # the first ones hold cuDNN's timing
    rate = statistics.median(rates) if rates else n_train / epoch["time_s"]
    stop = [r for r in recs if r["kind"] == "stop"]
    last = stop[-1]["last_epoch_s"] if stop else epoch["time_s"]
    epoch_s = 1.05 * (n_train / rate + max(last - epoch["time_s"], 0.0)) + 1.0  # + validation, checkpoint, 5 %
    overhead = max(p1_wall - last, 0.0)  # process start, data, export: paid again by phase 2
    left = deadline - time.time() - reserve
    fits.append((max(1, min(ceiling, 1 + int((left - overhead) // epoch_s))), rate, epoch_s, overhead))
e, rate, epoch_s, overhead = min(fits) if fits else (1, 0.0, 0.0, 0.0)
print(e, f"{rate:.0f}_samples/s_per_run,_epoch~{epoch_s:.1f}s,_phase-2_start~{overhead:.0f}s")
PYEOF
)
EPOCHS=${EPOCHS:-1} FIT_NOTE=${FIT_NOTE:-no_fit}
log "fit: $EPOCHS epochs (${FIT_NOTE//_/ })"
P2_START=$(now)
if [[ $EPOCHS -gt 1 ]]; then
    log "phase 2: both twins resume to epoch $EPOCHS"
    pids=()
    for r in "${RUNS[@]}"; do
        [[ -f $WORK/$r/last.ckpt ]] || continue
        { train "$r" fit --resume --epochs "$EPOCHS" || log "error: phase 2 of $r failed"; } & pids+=($!)
    done
    [[ ${#pids[@]} -gt 0 ]] && wait "${pids[@]}"
fi

E_START=$(now)
post() {  # post RUN: convert, validation split, test set; files into $WORK/$run.out
    local run=$1 o=$WORK/$1.out
    mkdir -p "$o"
    if [[ -n ${INIT[$run]} ]]; then  # fine-tuned through time: already the spiking network
        ln -s "$WORK/$run" "$WORK/${run}_snn"
    else
        "$PY" -m snnzoo convert "$WORK/$run" -o "$WORK/${run}_snn" -T 8 || return 1
    fi
    "$PY" gpu/qcfs_val.py "$WORK/${run}_snn" --data-root "$DATA" --device "$DEVICE" > "$o/val.json" || log "error: val of $run"
    for which in all exact twin; do
        local name=eval_test.json flag=(--steps-sweep 1,2,4) model=$WORK/${run}_snn
        [[ $which == exact ]] && name=eval_test_exact.json flag=(--exact-only)
        [[ $which == twin && -n ${INIT[$run]} ]] && continue  # no twin: the run is the spiking net
        [[ $which == twin ]] && name=eval_test_ann_twin.json flag=() model=$WORK/$run
        NVIDIA_TF32_OVERRIDE=0 "$PY" -m snnzoo eval "$model" --dataset cifar10 --data-root "$DATA" --split test \
            --format json --no-progress --batch-size 500 --device "$DEVICE" "${flag[@]}" "${EVAL_EXTRA[@]}" \
            > "$o/$name" || log "error: eval $which of $run"
    done
    cp "$WORK/${run}_snn/model.safetensors" "$OUT/$run.safetensors"
    cp "$WORK/${run}_snn/config.json" "$o/config_snn.json"
    cp "$WORK/$run/config.json" "$o/config_twin.json"
    for f in metrics.jsonl curves.png; do cp "$WORK/$run/$f" "$o/"; done
    cp "$WORK/$run".*.log "$o/"
    cmp -s "$WORK/$run/model.safetensors" "$WORK/${run}_snn/model.safetensors" && echo same > "$o/weights_same_as_twin" \
        || echo differ > "$o/weights_same_as_twin"
    tar -C "$o" -cf "$OUT/$run.tar" .
}
log "post: convert, validate, evaluate on $DEVICE (fp32, TF32 off)"
pids=()
for r in "${RUNS[@]}"; do
    [[ -f $WORK/$r/model.safetensors ]] || continue
    { post "$r" || log "error: post of $r failed"; } & pids+=($!)
done
[[ ${#pids[@]} -gt 0 ]] && wait "${pids[@]}"

"$PY" - "$OUT" "$WORK" "$WORK/env.json" "$EPOCHS" "$FIT_NOTE" "$(now)" "$BUDGET_S" \
    "$P1_START" "$P2_START" "$E_START" "${RUNS[@]}" <<'PYEOF'
import hashlib, json, sys
from pathlib import Path
out, work, env, epochs, fit_note, wall, budget = sys.argv[1:8]
p1, p2, ev = map(float, sys.argv[8:11])
runs = sys.argv[11:]
out, work = Path(out), Path(work)
def read(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
summary = {**json.loads(Path(env).read_text()), "epochs_fitted": int(epochs), "fit": fit_note.replace("_", " "),
           "wall_s": float(wall), "budget_s": float(budget),
           "phases_s": {"start": p1, "probe": round(p2 - p1, 1), "fit": round(ev - p2, 1),
                        "post_and_summary": round(float(wall) - ev, 1)}, "runs": {}}
for run in runs:
    o, w = work / f"{run}.out", out / f"{run}.safetensors"
    cfg = read(o / "config_twin.json") or {}
    r = {"stopped_early": cfg.get("stopped_early"), "twin_metrics": cfg.get("metrics"),
         "val": read(o / "val.json"),
         "weights_bytes": w.stat().st_size if w.is_file() else None,
         "weights_sha256": hashlib.sha256(w.read_bytes()).hexdigest() if w.is_file() else None}
    for key, name in (("test", "eval_test.json"), ("test_exact", "eval_test_exact.json"),
                      ("twin_test", "eval_test_ann_twin.json")):
        e = read(o / name)
        r[key] = e and {k: e.get(k) for k in ("accuracy", "correct", "n", "spikes_per_sample", "by_time_steps")}
    summary["runs"][run] = r
vals = {run: (r["val"] or {}).get("val_acc", {}).get("8", -1.0) for run, r in summary["runs"].items()}
summary["selected_by_val_T8"] = max(vals, key=lambda k: (vals[k], -runs.index(k)))  # a tie: the first
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary, indent=1)[:6000])
PYEOF
# A file over 16 MiB does not come back from the device: weights that big travel in 15 MiB parts
# (`cat NAME.safetensors.part* > NAME.safetensors`; summary.json holds the whole file's sha256).
for f in "$OUT"/*.safetensors; do
    [[ -f $f && $(stat -c %s "$f") -gt $((16 * 1024 * 1024)) ]] || continue
    split -b 15M -d "$f" "$f.part" && rm "$f" && log "split $(basename "$f") into $(ls "$f".part* | wc -l) parts"
done
log "done: $(ls "$OUT" | wc -l) files in $OUT"
exec >&- 2>&-
wait "$TEE"
