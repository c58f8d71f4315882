#!/usr/bin/env bash
# Run every benchmark in benchmarks/ and collect their markdown tables.
#
#   benchmarks/run_all.sh            # full runs (minutes each; use a quiet machine)
#   benchmarks/run_all.sh --quick    # a fast check that every script runs
#
# Tables go to $OUT (default benchmarks/results/): one <script>.md per benchmark and all.md with
# all of them, ready to paste into benchmarks/RESULTS.md. The GPU script runs only when torch sees
# a CUDA device. A script that fails is reported and the others still run; the exit status is
# non-zero if any failed.
set -u
cd "$(dirname "$0")/.."
QUICK=""
[ "${1:-}" = "--quick" ] && QUICK="--quick"
OUT="${OUT:-benchmarks/results}"
mkdir -p "$OUT"
: > "$OUT/all.md"
failed=()

DATA="${SNNZOO_DATA:-$(cd .. && pwd)/shared/data}"

run() {  # run [--as NAME] SCRIPT [ARGS...]: its stdout (the tables) to $OUT/NAME.md (default: the
         # script's name), progress to the terminal
  local as=""
  if [ "$1" = "--as" ]; then as="$2"; shift 2; fi
  local script="$1"; shift
  local name; name="$(basename "$script" .py)"
  local out="${as:-$name}"
  if [ ! -f "$script" ]; then
    echo "== $name: not present, skipped" >&2
    return
  fi
  local args=("$@")
  if [ -n "$QUICK" ]; then  # the script's own --quick, or short settings for those without one
    if python "$script" --help 2>/dev/null | grep -q -- "--quick"; then
      args+=("--quick")
    else
      case "$name" in
        bench_train_cpu) args+=(--steps 1 --models nmnist_compact) ;;
        emulator_fidelity) args+=(--n 20) ;;
      esac
    fi
  fi
  echo "== $out: $script ${args[*]}" >&2
  if python "$script" "${args[@]}" > "$OUT/$out.md"; then
    cat "$OUT/$out.md" >> "$OUT/all.md"
    printf '\n' >> "$OUT/all.md"
  else
    echo "== $out FAILED (see above)" >&2
    failed+=("$out")
  fi
}

run benchmarks/bench_binning.py
run benchmarks/bench_inference_cpu.py
run --as bench_inference_cpu_kept benchmarks/bench_inference_cpu.py --keep-freed-memory
run benchmarks/bench_train_cpu_peers.py
run --as bench_train_cpu_peers_kept benchmarks/bench_train_cpu_peers.py --keep-freed-memory
run benchmarks/bench_train_cpu.py
run benchmarks/bench_export.py
run benchmarks/bench_cold_start.py
run benchmarks/emulator_fidelity.py --data-root "$DATA"

if python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  if [ -n "$QUICK" ]; then run benchmarks/bench_gpu.py --smoke; else run benchmarks/bench_gpu.py; fi
else
  echo "== bench_gpu: no CUDA device here; smoke-testing it on the CPU instead" >&2
  [ -n "$QUICK" ] && run benchmarks/bench_gpu.py --device cpu --smoke --modes eager spikingjelly
fi

cat "$OUT/all.md"
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
