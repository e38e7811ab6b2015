#!/usr/bin/env bash
# Several GPU jobs in one device call, one job per GPU, side by side (a multi-GPU machine costs the
# same device time per second as a single one, so independent jobs share a call):
#
#   bash scripts/gpu_parallel.sh "notebooks=bash scripts/gpu_notebooks.sh" \
#                                "regbench=BUDGET=420 bash scripts/gpu_regbench.sh book" ...
#
# Job i runs with CUDA_VISIBLE_DEVICES=i and OUT=$OUT/<name>; its output goes to $OUT/<name>/job.log.
# The script waits for every job, prints each one's exit status and the tail of its log, and packs each
# job's folder into $OUT/<name>.tgz (the device tool brings back at most 8 files from $OUT).
set -uo pipefail
source "$(dirname "$0")/_prologue.sh"   # once here: the jobs reuse its wheels and caches
export BLAVIZ_GIT_COMMIT=${BLAVIZ_GIT_COMMIT:-unknown} BLAVIZ_GIT_DIRTY=${BLAVIZ_GIT_DIRTY:-unknown}
ngpu=$(nvidia-smi -L 2>/dev/null | wc -l)
[ "$#" -le "$ngpu" ] || { echo "gpu_parallel: $# jobs but $ngpu GPUs" >&2; exit 2; }
i=0; names=(); pids=()
for job in "$@"; do
  name=${job%%=*}; cmd=${job#*=}
  mkdir -p "$OUT/$name"
  ( export CUDA_VISIBLE_DEVICES=$i OUT=$OUT/$name; echo "[$name] gpu $i: $cmd"; eval "$cmd" ) \
      >"$OUT/$name/job.log" 2>&1 &
  pids+=($!); names+=("$name"); i=$((i + 1))
done
for k in "${!pids[@]}"; do
  wait "${pids[$k]}"; rc=$?
  echo "=== ${names[$k]}: rc=$rc"; tail -n 15 "$OUT/${names[$k]}/job.log"
  tar czf "$OUT/${names[$k]}.tgz" -C "$OUT" "${names[$k]}" && rm -rf "${OUT:?}/${names[$k]}"
done
