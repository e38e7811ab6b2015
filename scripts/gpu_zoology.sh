#!/usr/bin/env bash
# The zoology task on the GPU machine, in one call, resumable (task "zoology", blaviz/experiments/zoology.py).
#
#   bash scripts/gpu_zoology.sh [PRESET]      # default zoology_controls
#
# Knobs: CONCURRENCY (processes sharing the GPU, default 10), BUDGET (seconds of training after which
# runs stop and are recorded as "time_limit", default 240), EXTRA (more CLI arguments), STEPTIME
# (space-separated PRESET:WIDTHS, e.g. "beyond:64 zoology_controls:128,256": step times of those
# presets' models, measured beside the sweep so that they share the GPU as its runs do).
# Resuming: results/zoology/<preset>/runs.jsonl and results/zoology/<preset>/checkpoints/ (when carried)
# are copied in first; runs cut by the budget continue from their checkpoints.
# Everything comes back as one file, $OUT/zoology_<preset>.tgz; checkpoints go in only while the
# archive stays under 15 MiB (the device tool's limit per file is 16 MiB).
set -uo pipefail
source "$(dirname "$0")/_prologue.sh"
PRESET=${1:-zoology_controls}
CONCURRENCY=${CONCURRENCY:-10}
BUDGET=${BUDGET:-240}
EXTRA=${EXTRA:-}
DEVICE=${DEVICE:-cuda}
START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
W=$OUT/zoology_$PRESET
mkdir -p "$W/checkpoints"
export BLAVIZ_CHECKPOINT_DIR=$W/checkpoints
PREV=results/zoology/$PRESET
[ -f "$PREV/runs.jsonl" ] && cp "$PREV/runs.jsonl" "$W/runs.jsonl"
[ -d "$PREV/checkpoints" ] && cp "$PREV"/checkpoints/*.pt "$W/checkpoints/" 2>/dev/null
CMD="python -m blaviz.experiments zoology --preset $PRESET --device $DEVICE --concurrency $CONCURRENCY --time-budget $BUDGET --out \$OUT --no-progress $EXTRA"
T0=$(date +%s)
ST_PIDS=()
for job in ${STEPTIME:-}; do
  p=${job%%:*}; w=${job#*:}
  timeout "$((BUDGET + 40))" $PY -m blaviz.experiments steptime --task zoology --preset "$p" --widths "$w" --device "$DEVICE" \
      --steps 5 >"$W/steptime_${p}_${w//,/-}.log" 2>&1 &
  ST_PIDS+=($!)
done
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  $PY -c "import torch, triton, platform; print('python', platform.python_version(), 'torch', torch.__version__, 'triton', triton.__version__)"
  $PY -m blaviz.experiments zoology --preset "$PRESET" --device "$DEVICE" --concurrency "$CONCURRENCY" \
      --time-budget "$BUDGET" --out "$W" --no-progress $EXTRA
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader || true
} 2>&1 | tee "$W/sweep.log"
for pid in "${ST_PIDS[@]}"; do wait "$pid"; done
T1=$(date +%s)
$PY -m blaviz.experiments.provenance --out "$W/provenance.json" --command "$CMD" \
    --script "scripts/gpu_zoology.sh $PRESET" --started "$START" --wall "$((T1 - T0))" \
    --runs "$W/runs.jsonl" --preset "zoology:$PRESET"
du -sh "$W"/checkpoints
tar czf "$OUT/zoology_$PRESET.tgz" -C "$OUT" "zoology_$PRESET"
if [ "$(stat -c %s "$OUT/zoology_$PRESET.tgz")" -gt $((15 * 1024 * 1024)) ]; then
  echo "checkpoints left out: the archive would exceed 15 MiB"
  ls -l "$W"/checkpoints > "$W/checkpoints_left_out.txt"
  tar czf "$OUT/zoology_$PRESET.tgz" -C "$OUT" --exclude=checkpoints "zoology_$PRESET"
fi
rm -rf "$W"
ls -l "$OUT"
