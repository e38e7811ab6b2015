#!/usr/bin/env bash
# Execute every notebook of the book on the GPU machine with nbval, in one device call:
#   scripts/fetch_device_wheels.sh          # here, once: the Jupyter stack as wheels in .whl/
#   device run, carry [".whl"]:  bash scripts/gpu_notebooks.sh
# The notebooks pick CUDA and their GPU sizes (blaviz.viz.by_device). Logs go to $OUT.
set -uo pipefail
source "$(dirname "$0")/_prologue.sh"
$PY -c "import nbval, nbclient, plotly" || { echo "gpu_notebooks: carry .whl (scripts/fetch_device_wheels.sh)" >&2; exit 1; }
# One pytest process per notebook, at most NB_JOBS (default 5) at once: the chapters are independent,
# and all of them at once once ran the machine out of memory for one kernel.
NB_JOBS=${NB_JOBS:-5}
{
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  $PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, 'cuda', torch.cuda.is_available())"
  echo "commit ${BLAVIZ_GIT_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
  date -u +%Y-%m-%dT%H:%M:%SZ
  T0=$(date +%s)
  pids=()
  for nb in book/*.ipynb; do
    while [ "$(jobs -rp | wc -l)" -ge "$NB_JOBS" ]; do sleep 1; done
    name=$(basename "$nb" .ipynb)
    ( s=$(date +%s); $PY -m pytest -q -p no:cacheprovider --nbval-lax --nbval-cell-timeout=300 --durations=5 "$nb" \
        >"$OUT/nb_$name.log" 2>&1; rc=$?; echo "$name rc=$rc wall=$(( $(date +%s) - s ))s" >>"$OUT/nb_summary.txt"; exit $rc ) &
    pids+=($!)
  done
  fail=0; for p in "${pids[@]}"; do wait "$p" || fail=1; done
  cat "$OUT/nb_summary.txt"
  for f in "$OUT"/nb_*.log; do echo "--- $f"; tail -n 12 "$f"; done
  echo "all notebooks: $([ $fail = 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - T0 ))s"
} 2>&1 | tee "$OUT/gpu_notebooks.log"
