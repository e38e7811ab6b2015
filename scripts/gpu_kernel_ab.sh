#!/usr/bin/env bash
# Kernel measurements in one device call: the benchmark sections given in SECTIONS (default
# variants,accuracy,bla,decode: launch settings side by side with registers and spills, bf16
# accuracy at large logits, BLA timings with the per-launch breakdown, decoding through the public
# API), then `pytest -m gpu`. Everything is packed into $OUT/kernels.tgz (the device tool brings
# back at most 8 files).
#
#   SECTIONS=variants,accuracy,decode bash scripts/gpu_kernel_ab.sh
set -uo pipefail
source "$(dirname "$0")/_prologue.sh"
work=$(mktemp -d)
{
  nvidia-smi --query-gpu=name,driver_version --format=csv
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
  echo "commit ${BLAVIZ_GIT_COMMIT:-unknown}"; date -u
} 2>&1 | tee "$work/env.txt"
timeout "${BENCH_TIMEOUT:-330}" python3 -m blaviz.bench gpu --sections "${SECTIONS:-variants,accuracy,bla,decode}" \
  --out "$work/h200.json" 2>&1 | tee "$work/bench.log"
echo "bench rc=${PIPESTATUS[0]}" | tee -a "$work/env.txt"
if [[ ${TESTS:-1} == 1 ]]; then
  xdist=""
  python3 -c "import xdist" 2>/dev/null && xdist="-n 4"
  timeout "${TEST_TIMEOUT:-200}" python3 -m pytest -q -m gpu tests/gpu $xdist -p no:cacheprovider ${TEST_K:+-k "$TEST_K"} 2>&1 | tee "$work/tests.log"
  echo "tests rc=${PIPESTATUS[0]}" | tee -a "$work/env.txt"
fi
tar -czf "$OUT/kernels.tgz" -C "$work" .
cp "$work/env.txt" "$OUT/env.txt"
