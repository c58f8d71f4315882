# Sourced by the device-call scripts after they set T0, PY, WORK, DATA, BUDGET_S and NAME:
# DEADLINE, now/log, snnzoo importable from this tree (no install), $WORK/env.json, the data check.
DEADLINE=$("$PY" -c "print($T0 + $BUDGET_S)")
now() { "$PY" -c "import time; print(f'{time.time() - $T0:.1f}')"; }
log() { echo "[$NAME $(now) s] $*"; }

# snnzoo from this tree, without installing anything: the repo root is the package `snnzoo`.
PKG=$(mktemp -d)
ln -s "$PWD" "$PKG/snnzoo"
export PYTHONPATH=$PKG${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
"$PY" - "$WORK/env.json" <<'PYEOF' || exit 1
import json, platform, sys, torch, snnzoo
env = {"python": platform.python_version(), "torch": torch.__version__, "snnzoo": snnzoo.__version__,
       "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
open(sys.argv[1], "w").write(json.dumps(env))
print(env, "snnzoo from", snnzoo.__file__)
PYEOF
[[ -f $DATA/cifar10_jpeg_q75.tar.gz ]] || { log "error: $DATA: no CIFAR-10 (run gpu/prepare_data.sh and carry .data)"; exit 1; }
nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm --format=csv 2>/dev/null
