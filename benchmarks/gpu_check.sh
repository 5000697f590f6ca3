#!/usr/bin/env bash
# GPU check: CUDA correctness of the fused SASA2d backend, then the model and layer benchmarks, in one go.
#
#   bash benchmarks/gpu_check.sh OUT_DIR          # from the repo root, on a machine with one CUDA GPU
#
# Writes at most 8 files into OUT_DIR: env.txt, gpu_check.log, gpu_correctness.md, gpu_models.md/.csv,
# gpu_sasa.md/.csv and gpu.md (everything combined; commit it as benchmarks/results/gpu.md).
# Parts run one after the other under time budgets, so the whole script takes about GPU_CHECK_SECONDS
# (default 210 s) plus interpreter start-up; each part also has a hard limit (`timeout`), and a failing part
# still leaves the others' tables. Exit status: 0 if every part succeeded and the correctness check passed.
#
# Environment: PYTHON (default python3); GPU_CHECK_SECONDS (total budget); GPU_CHECK_DEVICE=cpu for a dry run on
# a machine without a GPU (tiny sizes, the layer's default backend; GPU_CHECK_BACKEND overrides the backend
# under test, e.g. torch, or triton with TRITON_INTERPRET=1).
set -uo pipefail

OUT=${1:?usage: bash benchmarks/gpu_check.sh OUT_DIR}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
TOTAL=${GPU_CHECK_SECONDS:-210}
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
LOG="$OUT/gpu_check.log"
: >"$LOG"
START=$(date +%s)
declare -A STATUS=()

elapsed() { echo $(($(date +%s) - START)); }
log() { echo "[$(date -u +%H:%M:%S) +$(elapsed)s] $*" | tee -a "$LOG"; }

# run_part NAME HARD_LIMIT_S COMMAND...: run with a hard time limit, output to the terminal and the log.
run_part() {
    local name=$1 limit=$2
    shift 2
    log "start $name (hard limit ${limit} s): $*"
    timeout -k 10 "$limit" "$@" 2>&1 | grep --line-buffered -v '^USDT:' | tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    [ "$rc" = 124 ] && log "$name hit its hard limit of ${limit} s"
    STATUS[$name]=$rc
    log "end $name: exit $rc"
}

if [ "$DEVICE" = cuda ]; then
    BACKEND=${GPU_CHECK_BACKEND:-triton}
    CORRECTNESS_ARGS=(--budget-s 70)
    MODELS_ARGS=(--sizes cifar --steps 15 --cap-s 2 --budget-s 45)
    SASA_ARGS=(--backends "$BACKEND,torch")
else  # dry run: tiny shapes, a few steps
    BACKEND=${GPU_CHECK_BACKEND:-auto}
    CORRECTNESS_ARGS=(--cases 2,10 --precisions fp32,bf16 --budget-s 60)
    MODELS_ARGS=(--sizes study --steps 1 --batch 8)
    SASA_ARGS=(--gpu-sweep --configs 16:8:3,32:8:5 --batch 2 --reps 2 --backends "$BACKEND")
fi

log "gpu_check on $DEVICE, backend under test: $BACKEND, total budget ${TOTAL} s, output in $OUT"
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "host: $(hostname), $(nproc) CPU cores"
    echo "gpu: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -n 4)"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout')"
    "$PY" - <<'EOF' 2>&1
import sys

import torch

print(f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
      f"cuda available: {torch.cuda.is_available()}")
if torch.cuda.is_available():
    print(f"device 0: {torch.cuda.get_device_name(0)}, cuDNN {torch.backends.cudnn.version()}")
try:
    import triton

    print(f"triton {triton.__version__}")
except ImportError as exc:
    print(f"triton: not importable ({exc})")
EOF
} >"$OUT/env.txt"
tee -a "$LOG" <"$OUT/env.txt"

run_part correctness 130 "$PY" -m benchmarks.gpu_correctness --device "$DEVICE" --backend "$BACKEND" \
    "${CORRECTNESS_ARGS[@]}" --out "$OUT/gpu_correctness.md"
run_part models 110 "$PY" -m benchmarks.models --device "$DEVICE" --backend "$BACKEND" "${MODELS_ARGS[@]}" \
    --out "$OUT/gpu_models.md"
SASA_BUDGET=$((TOTAL - $(elapsed) - 15))
[ "$SASA_BUDGET" -lt 30 ] && SASA_BUDGET=30
run_part sasa $((SASA_BUDGET + 60)) "$PY" -m benchmarks.sasa --device "$DEVICE" "${SASA_ARGS[@]}" \
    --budget-s "$SASA_BUDGET" --out "$OUT"

FAILED=0
for part in correctness models sasa; do
    [ "${STATUS[$part]}" = 0 ] || FAILED=1
done
{
    echo "# GPU check"
    echo
    echo "\`bash benchmarks/gpu_check.sh\` on $DEVICE, $(date -u '+%Y-%m-%d %H:%M UTC'), $(elapsed) s in all."
    echo "Part exit codes: correctness ${STATUS[correctness]} (1 = a check failed), models ${STATUS[models]},"
    echo "sasa ${STATUS[sasa]} (124 = hard time limit)."
    echo
    echo '```'
    cat "$OUT/env.txt"
    echo '```'
    for part in correctness models sasa; do
        echo
        if [ -s "$OUT/gpu_$part.md" ]; then
            sed 's/^# /## /' "$OUT/gpu_$part.md"
        else
            echo "## $part: no table (exit ${STATUS[$part]}); see gpu_check.log"
        fi
    done
} >"$OUT/gpu.md"
log "done: $OUT/gpu.md ($(ls "$OUT" | wc -l) files); exit $FAILED"
exit "$FAILED"
