#!/usr/bin/env bash
# Execute every notebook of the book on the GPU machine with nbval, in one device call:
#   scripts/fetch_device_wheels.sh          # here, once: the Jupyter stack as wheels in .whl/
#   device run, carry [".whl"]:  bash scripts/gpu_notebooks.sh
# The notebooks pick CUDA and their GPU sizes (blaviz.viz.by_device). Logs go to $OUT.
set -uo pipefail
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=/tmp/triton_cache
{
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, 'cuda', torch.cuda.is_available())"
  date -u +%Y-%m-%dT%H:%M:%SZ
  time python3 -m pytest -q -p no:cacheprovider --nbval-lax --nbval-cell-timeout=300 --durations=0 book
} 2>&1 | tee "$OUT/gpu_notebooks.log"
