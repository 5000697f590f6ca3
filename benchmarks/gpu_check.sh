#!/usr/bin/env bash
# GPU check: CUDA correctness of the fused SASA2d backend, then the model and layer benchmarks, in one go.
#
#   bash benchmarks/gpu_check.sh OUT_DIR          # from the repo root, on a machine with one CUDA GPU
#
# Writes into OUT_DIR: env.txt, gpu_check.log, gpu_profile.md, gpu_correctness.md, gpu_models.md/.csv,
# gpu_sasa.md/.csv, gpu.md (the kernel parts combined, each table headed by its command, end time, GPU and
# versions; commit it as benchmarks/results/gpu.md), then the study check's gpu_study.md/.json/.log and work/
# (benchmarks/gpu_study_check.sh; commit gpu_study.md as benchmarks/results/gpu_study.md).
# The kernel parts run one after the other under time budgets (about GPU_CHECK_SECONDS, default 180 s, plus
# interpreter start-up), then the study check (about GPU_STUDY_SECONDS, default 240 s, hard limit +120 s):
# under 10 minutes in all.
# Each part has a hard limit (`timeout`), and a failing part still leaves the others' tables. gpu.md says whether
# the checkout had uncommitted changes. Exit status: 0 if every part succeeded and every check passed.
#
# Environment: PYTHON (default python3); GPU_CHECK_SECONDS (kernel parts' budget); GPU_STUDY_SECONDS;
# GPU_CHECK_STUDY=0 skips the study check; GPU_CHECK_DEVICE=cpu for a dry run on a machine without a GPU (tiny
# sizes, the layer's default backend; GPU_CHECK_BACKEND overrides the backend under test, e.g. torch, or triton
# with TRITON_INTERPRET=1; the study check then runs its own dry run with Triton interpreted).
set -uo pipefail

OUT=${1:?usage: bash benchmarks/gpu_check.sh OUT_DIR}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
TOTAL=${GPU_CHECK_SECONDS:-180}
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
LOG="$OUT/gpu_check.log"
: >"$LOG"
START=$(date +%s)
declare -A STATUS=() COMMAND=() ENDED=()

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
    COMMAND[$name]="$*"
    ENDED[$name]=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
    log "end $name: exit $rc"
}

if [ "$DEVICE" = cuda ]; then
    BACKEND=${GPU_CHECK_BACKEND:-triton}
    CORRECTNESS_ARGS=(--budget-s 70)
    MODELS_ARGS=(--sizes cifar --steps 15 --cap-s 2 --budget-s 45)
    SASA_ARGS=(--backends "$BACKEND,torch")
    PROFILE_ARGS=()
else  # dry run: tiny shapes, a few steps
    BACKEND=${GPU_CHECK_BACKEND:-auto}
    CORRECTNESS_ARGS=(--cases 2,10 --precisions fp32,bf16 --budget-s 60)
    MODELS_ARGS=(--sizes study --steps 1 --batch 8)
    SASA_ARGS=(--gpu-sweep --configs 16:8:3,32:8:5 --batch 2 --reps 2 --backends "$BACKEND")
    PROFILE_ARGS=(--channels 16 --size 8 --kernel-size 3 --batch 2)
fi

log "gpu_check on $DEVICE, backend under test: $BACKEND, total budget ${TOTAL} s, output in $OUT"
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "host: $(hostname), $(nproc) CPU cores"
    echo "gpu: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -n 4)"
    echo "git: $(git describe --always --dirty 2>/dev/null || echo 'not a git checkout')"
    if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
        echo "WARNING: the checkout has uncommitted changes; these numbers are not from committed code"
    fi
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

run_part profile 60 "$PY" -m benchmarks.profile_layer --device "$DEVICE" "${PROFILE_ARGS[@]}" \
    --out "$OUT/gpu_profile.md"
run_part correctness 130 "$PY" -m benchmarks.gpu_correctness --device "$DEVICE" --backend "$BACKEND" \
    "${CORRECTNESS_ARGS[@]}" --out "$OUT/gpu_correctness.md"
run_part models 110 "$PY" -m benchmarks.models --device "$DEVICE" --backend "$BACKEND" "${MODELS_ARGS[@]}" \
    --out "$OUT/gpu_models.md"
SASA_BUDGET=$((TOTAL - $(elapsed) - 15))
[ "$SASA_BUDGET" -lt 30 ] && SASA_BUDGET=30
run_part sasa $((SASA_BUDGET + 60)) "$PY" -m benchmarks.sasa --device "$DEVICE" "${SASA_ARGS[@]}" \
    --budget-s "$SASA_BUDGET" --out "$OUT"

PARTS=(profile correctness models sasa)
FAILED=0
for part in "${PARTS[@]}"; do
    [ "${STATUS[$part]}" = 0 ] || FAILED=1
done
VERSIONS=$(grep -E '^(gpu|python|device 0|triton):' "$OUT/env.txt" | tr '\n' ';' | sed 's/;$//; s/;/; /g')
{
    echo "# GPU check"
    echo
    echo "\`bash benchmarks/gpu_check.sh\` on $DEVICE, $(date -u '+%Y-%m-%d %H:%M UTC'), $(elapsed) s in all."
    echo "Part exit codes: profile ${STATUS[profile]}, correctness ${STATUS[correctness]} (1 = a check failed),"
    echo "models ${STATUS[models]}, sasa ${STATUS[sasa]} (124 = hard time limit)."
    echo
    echo '```'
    cat "$OUT/env.txt"
    echo '```'
    for part in "${PARTS[@]}"; do
        echo
        if [ -s "$OUT/gpu_$part.md" ]; then
            sed 's/^# /## /' "$OUT/gpu_$part.md"
            echo
            echo "Command: \`${COMMAND[$part]}\`; finished ${ENDED[$part]}; $VERSIONS."
        else
            echo "## $part: no table (exit ${STATUS[$part]}); see gpu_check.log"
        fi
    done
} >"$OUT/gpu.md"
log "kernel parts done: $OUT/gpu.md; exit so far $FAILED"

if [ "${GPU_CHECK_STUDY:-1}" != 0 ]; then
    log "start study check: bash benchmarks/gpu_study_check.sh $OUT"
    GPU_STUDY_DEVICE=$DEVICE PYTHON=$PY bash benchmarks/gpu_study_check.sh "$OUT"
    study_rc=$?
    log "end study check: exit $study_rc"
    [ "$study_rc" = 0 ] || FAILED=1
fi
log "done ($(elapsed) s); exit $FAILED"
exit "$FAILED"
