#!/usr/bin/env bash
# GPU study check: a real study with the GPU recipe, the Triton backend, bf16-mixed, 1 and 2 workers on one GPU,
# stream and memory data modes; promotion verified on the CPU (torch backend). See benchmarks/gpu_study.py.
#
#   bash benchmarks/gpu_study_check.sh OUT_DIR     # from the repo root, on a machine with one CUDA GPU
#
# Writes OUT_DIR/gpu_study.md (commit it as benchmarks/results/gpu_study.md), gpu_study.json, gpu_study.log and the
# studies' logs under OUT_DIR/work/. Runs in about GPU_STUDY_SECONDS (default 240; no new phase starts after it)
# with a hard limit of that plus 120 s. Exit status 0 only if every check passed.
#
# Environment: PYTHON (default python3); GPU_STUDY_SECONDS; GPU_STUDY_DEVICE=cpu for the dry run on a machine
# without a GPU (Triton under TRITON_INTERPRET=1, tiny images, one attention layer, no nvidia-smi; default budget
# 1500 s).
set -uo pipefail

OUT=${1:?usage: bash benchmarks/gpu_study_check.sh OUT_DIR}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
DEVICE=${GPU_STUDY_DEVICE:-cuda}
DRY_BUDGET=1500  # the CPU dry run: every trial interpreted (~2 min each on a 2-core machine)
[ "$DEVICE" = cpu ] && DEFAULT_BUDGET=$DRY_BUDGET || DEFAULT_BUDGET=240
SECONDS_BUDGET=${GPU_STUDY_SECONDS:-$DEFAULT_BUDGET}
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
echo "[$(date -u +%H:%M:%S)] gpu_study_check on $DEVICE, budget ${SECONDS_BUDGET} s, output in $OUT" | tee "$OUT/gpu_study.log"
timeout -k 10 $((SECONDS_BUDGET + 120)) "$PY" -m benchmarks.gpu_study --device "$DEVICE" --budget-s "$SECONDS_BUDGET" \
    --out "$OUT" 2>&1 | grep --line-buffered -v '^USDT:' | tee -a "$OUT/gpu_study.log"
rc=${PIPESTATUS[0]}
[ "$rc" = 124 ] && echo "gpu_study_check hit its hard limit" | tee -a "$OUT/gpu_study.log"
exit "$rc"
