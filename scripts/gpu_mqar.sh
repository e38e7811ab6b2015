#!/usr/bin/env bash
# MQAR on the GPU machine, in one call. Writes everything under $OUT (default ./.device_out).
#
#   scripts/gpu_mqar.sh smoke                # ~1-2 min: environment, step times, a 2-run pipeline check
#   scripts/gpu_mqar.sh sweep [PRESET]       # the sweep (default: book), resumable, time-boxed
#   TASK=zoology scripts/gpu_mqar.sh sweep gsa_check   # the same for another task's preset
#
# Knobs (environment): CONCURRENCY (default 12 processes sharing the GPU), BUDGET (seconds after
# which no run starts and running ones stop, default 400), PRESET, EXTRA (more CLI arguments).
# Resuming: copy an earlier runs.jsonl to results/<task>/<preset>/runs.jsonl in the working tree;
# it is copied to $OUT first, finished runs are skipped, and $OUT/runs.jsonl holds old + new lines.
# Checkpoints of resumable tasks (zoology) stay in BLAVIZ_CHECKPOINT_DIR on the GPU machine, not
# in $OUT: they are too large for the device tool to bring back.
# Provenance: BLAVIZ_GIT_COMMIT / BLAVIZ_GIT_DIRTY name the code when .git does not travel.
set -uo pipefail
source "$(dirname "$0")/_prologue.sh"
MODE=${1:-smoke}
PRESET=${2:-${PRESET:-book}}
TASK=${TASK:-mqar}
CONCURRENCY=${CONCURRENCY:-12}
BUDGET=${BUDGET:-400}
EXTRA=${EXTRA:-}
DEVICE=${DEVICE:-cuda}          # cpu: a dry run of this script on a machine without a GPU
START=$(date -u +%Y-%m-%dT%H:%M:%SZ)

env_report() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  $PY - <<'EOF'
import torch, platform
try:
    import triton; tv = triton.__version__
except Exception as e:
    tv = f"none ({e})"
print("python", platform.python_version(), "torch", torch.__version__, "triton", tv,
      "cuda", torch.version.cuda, "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
EOF
}

if [ "$MODE" = smoke ]; then
  {
    env_report
    # which BLA implementation the layers will use (prints the probe's verdict)
    $PY -c "from blaviz.layers import resolve_bla_impl; print('bla impl:', resolve_bla_impl('auto', '$DEVICE'))"
    # step times of every book configuration at d_model 64, one process
    $PY -m blaviz.experiments steptime --task mqar --preset "$PRESET" --device $DEVICE --steps 10
    # the same for two configurations with 12 processes at once (sharing cost)
    $PY -m blaviz.experiments steptime --task mqar --preset "$PRESET" --device $DEVICE --steps 10 --concurrency "$CONCURRENCY" \
        --mixers bla --widths 64 --limit 1
    # the whole pipeline: process pool, CUDA in each worker, runs.jsonl
    $PY -m blaviz.experiments mqar --preset ci --device $DEVICE --concurrency 2 --out "$OUT/ci" --no-progress
  } 2>&1 | tee "$OUT/smoke.log"
  cp "$OUT/ci/runs.jsonl" "$OUT/ci_runs.jsonl" 2>/dev/null
  rm -rf "$OUT/ci"
  exit 0
fi

if [ "$MODE" = sweep ]; then
  PREV=results/$TASK/$PRESET/runs.jsonl
  [ -f "$PREV" ] && cp "$PREV" "$OUT/runs.jsonl" && echo "resuming from $PREV ($(wc -l <"$PREV") lines)"
  CMD="python -m blaviz.experiments $TASK --preset $PRESET --device $DEVICE --concurrency $CONCURRENCY --time-budget $BUDGET --out \$OUT --no-progress $EXTRA"
  T0=$(date +%s)
  {
    env_report
    $PY -m blaviz.experiments "$TASK" --preset "$PRESET" --device $DEVICE --concurrency "$CONCURRENCY" \
        --time-budget "$BUDGET" --out "$OUT" --no-progress $EXTRA
    $PY -m blaviz.experiments analyze "$OUT/runs.jsonl" --json "$OUT/summary.json"
  } 2>&1 | tee "$OUT/sweep.log"
  T1=$(date +%s)
  $PY -m blaviz.experiments.provenance --out "$OUT/provenance.json" --command "$CMD" --script "scripts/gpu_mqar.sh sweep" \
      --started "$START" --wall "$((T1 - T0))" --runs "$OUT/runs.jsonl" --preset "$TASK:$PRESET"
  exit 0
fi
echo "usage: $0 smoke|sweep [PRESET]" >&2
exit 2
