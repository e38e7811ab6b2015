#!/usr/bin/env bash
# RegBench on the GPU machine, in one call: the state-size sweep of a preset (default: book).
# Writes everything under $OUT (default ./.device_out): runs.jsonl, errors.jsonl (if any), summary.json,
# sweep.log and provenance.json.
#
#   scripts/gpu_regbench.sh [PRESET]
#
# Knobs (environment): CONCURRENCY (training processes sharing the GPU, default 12), BUDGET (seconds
# after which no run starts and running ones stop, default 420), DEVICE (default cuda; cpu = a dry run
# on a machine without a GPU), EXTRA (more CLI arguments, e.g. "--max-runs 2"), PY (default python3).
#
# Sizing the book preset (24 runs x ~1300 steps at batch 32, prompts <= 512 tokens): MQAR's step
# times on the H200 (results/archive/mqar/book/smoke.log: 7-10 ms per step for SWA/BLA/full attention,
# 16-36 ms for GLA/GSA/Gated DeltaNet, alone; 22-42 ms each with 12 processes sharing the GPU)
# give ~550 s of single-process training, ~3 min with 12 processes, plus ~30 s of start-up: the
# sweep should end well inside BUDGET=420, and the whole call in about 5-8 minutes.
#
# Resuming: a runs.jsonl at results/regbench/<preset>/runs.jsonl in the working tree is copied to
# $OUT first; its finished runs are skipped, and $OUT/runs.jsonl holds old + new lines. Runs cut by
# the budget are written with "stopped": "time_limit" and are trained again by the next call.
# Provenance: BLAVIZ_GIT_COMMIT / BLAVIZ_GIT_DIRTY name the code when .git does not travel.
set -uo pipefail
source "$(dirname "$0")/_prologue.sh"
PRESET=${1:-${PRESET:-book}}
CONCURRENCY=${CONCURRENCY:-12}
BUDGET=${BUDGET:-420}
EXTRA=${EXTRA:-}
DEVICE=${DEVICE:-cuda}
START=$(date -u +%Y-%m-%dT%H:%M:%SZ)

PREV=results/regbench/$PRESET/runs.jsonl
if [ -f "$PREV" ] && [ "$(realpath "$PREV")" != "$(realpath -m "$OUT/runs.jsonl")" ]; then
  cp "$PREV" "$OUT/runs.jsonl" && echo "resuming from $PREV ($(wc -l <"$PREV") lines)"
fi
CMD="python -m blaviz.experiments regbench --preset $PRESET --device $DEVICE --concurrency $CONCURRENCY --time-budget $BUDGET --out \$OUT --no-progress $EXTRA"
T0=$(date +%s)
{
  echo "[gpu_regbench] $START preset=$PRESET device=$DEVICE concurrency=$CONCURRENCY budget=${BUDGET}s"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  $PY - "$DEVICE" <<'EOF'
import platform, sys, torch
try:
    import triton; tv = triton.__version__
except Exception as e:
    tv = f"none ({e})"
print("python", platform.python_version(), "torch", torch.__version__, "triton", tv, "cuda", torch.version.cuda,
      "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
from blaviz.layers import resolve_bla_impl
print("bla impl:", resolve_bla_impl("auto", sys.argv[1]))
EOF
  $PY -m blaviz.experiments regbench --preset "$PRESET" --list --out "$OUT" | awk '{print $1}' | sort | uniq -c
  $PY -m blaviz.experiments regbench --preset "$PRESET" --device "$DEVICE" --concurrency "$CONCURRENCY" \
      --time-budget "$BUDGET" --out "$OUT" --no-progress $EXTRA
  echo "[gpu_regbench] sweep done after $(( $(date +%s) - T0 ))s; analysing"
  $PY -m blaviz.experiments analyze "$OUT/runs.jsonl" --json "$OUT/summary.json"
} 2>&1 | tee "$OUT/sweep.log"
T1=$(date +%s)
$PY -m blaviz.experiments.provenance --out "$OUT/provenance.json" --command "$CMD" --script "scripts/gpu_regbench.sh" \
    --started "$START" --wall "$((T1 - T0))" --runs "$OUT/runs.jsonl" --preset "regbench:$PRESET"
exit 0
