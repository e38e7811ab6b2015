#!/usr/bin/env bash
# The zoology task on the GPU machine, in one call, resumable (task "zoology", blaviz/experiments/zoology.py).
#
#   bash scripts/gpu_zoology.sh [PRESET]      # default zoology_controls
#
# Knobs: CONCURRENCY (processes sharing the GPU, default 2: once steps are CUDA graphs, more
# processes add no throughput), BUDGET (seconds of training after which runs stop and are recorded
# as "time_limit", default 240), GRAPH (1: replay each training step as a CUDA graph, the default on
# cuda; 0: eager steps), EXTRA (more CLI arguments), STEPTIME (space-separated PRESET:WIDTHS, e.g.
# "beyond:64 zoology_controls:128,256": step times of those presets' models, measured beside the
# sweep so that they share the GPU as its runs do).
#
# A call that ends mid-run loses nothing: a run cut by the budget saves its checkpoint (model,
# optimiser, schedule, data position, RNG) and the next call continues it.
# In:  results/zoology/<preset>/runs.jsonl (finished runs are skipped) and the checkpoints in
#      CKPT_IN (default .ckpt/zoology/<preset>, ignored by git: name it in the device call's carry).
# Out: $OUT/zoology_<preset>.tgz (runs.jsonl, logs, provenance) and the checkpoints of the cut runs
#      in parts $OUT/zoology_<preset>_ckpt_<k>.tgz of at most 15 MiB each (the device tool returns
#      8 files of 16 MiB); unpack them with `tar xzf <part> -C .ckpt/zoology/<preset>`. A d_model 64
#      run's checkpoint is about 6.4 MB (mostly the 8192 x 64 embedding and its Adam moments).
set -uo pipefail
source "$(dirname "$0")/_prologue.sh"
PRESET=${1:-zoology_controls}
CONCURRENCY=${CONCURRENCY:-2}
BUDGET=${BUDGET:-240}
EXTRA=${EXTRA:-}
DEVICE=${DEVICE:-cuda}
GRAPH=${GRAPH:-1}
[ "$GRAPH" = 1 ] && [ "$DEVICE" = cuda ] && EXTRA="--cuda-graph $EXTRA"
CKPT_IN=${CKPT_IN:-.ckpt/zoology/$PRESET}
MAX_PARTS=6
START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
W=$OUT/zoology_$PRESET
mkdir -p "$W/checkpoints"
export BLAVIZ_CHECKPOINT_DIR=$W/checkpoints
PREV=results/zoology/$PRESET
[ -f "$PREV/runs.jsonl" ] && cp "$PREV/runs.jsonl" "$W/runs.jsonl"
[ -d "$CKPT_IN" ] && cp "$CKPT_IN"/*.pt "$W/checkpoints/" 2>/dev/null
echo "checkpoints in: $(ls "$W"/checkpoints | wc -l)"
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
# the checkpoints of the cut runs, in parts of at most 15 MiB (greedy by size; a .pt does not compress)
LIMIT=$((15 * 1024 * 1024))
part=0; size=0; list=()
flush() {
  [ ${#list[@]} -eq 0 ] && return
  part=$((part + 1))
  tar czf "$OUT/zoology_${PRESET}_ckpt_$part.tgz" -C "$W/checkpoints" "${list[@]}"
  list=(); size=0
}
left=()
for f in $(ls -S "$W"/checkpoints 2>/dev/null); do
  s=$(stat -c %s "$W/checkpoints/$f")
  if [ "$s" -gt "$LIMIT" ]; then left+=("$f"); continue; fi
  [ $((size + s)) -gt "$LIMIT" ] && flush
  if [ "$part" -ge "$MAX_PARTS" ]; then left+=("$f"); continue; fi
  list+=("$f"); size=$((size + s))
done
[ "$part" -lt "$MAX_PARTS" ] && flush
if [ ${#left[@]} -gt 0 ]; then
  echo "checkpoints left out (more than $MAX_PARTS parts, or one over 15 MiB): ${left[*]}"
  printf '%s\n' "${left[@]}" > "$W/checkpoints_left_out.txt"
fi
echo "checkpoints out: $(ls "$W"/checkpoints | wc -l) in $part parts"
tar czf "$OUT/zoology_$PRESET.tgz" -C "$OUT" --exclude=checkpoints "zoology_$PRESET"
rm -rf "$W"
ls -l "$OUT"
