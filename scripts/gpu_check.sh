#!/usr/bin/env bash
# The whole batch of GPU checks in one device call: environment, `pytest -m gpu`, then the
# correctness-gated benchmark (python -m blaviz.bench gpu). Logs and JSON go under $OUT
# (the device tool brings back what is there); elsewhere OUT defaults to ./.device_out.
# Wheels in .whl/ (fla-core for the GSA baseline) are installed first (scripts/_prologue.sh).
# Usage: bash scripts/gpu_check.sh [tests|bench|all|quick]   (default all; quick: three bf16 and
# NaN-poison tests, then `bench gpu --quick`). Times on an H100: `tests` about 6 minutes (fla's
# autotuning in test_fla_gsa.py dominates); with fla installed, any benchmark with the gsa section
# first compiles fla's GSA kernels (5-6 minutes), so `quick` takes about 7.
set -uo pipefail
source "$(dirname "$0")/_prologue.sh"
what=${1:-all}
{
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.used,temperature.gpu --format=csv
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name(0))"
  echo "commit ${BLAVIZ_GIT_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"  # the device copy's .git may be stale
} 2>&1 | tee "$OUT/env.txt"
test_rc=skipped
bench_rc=skipped
if [[ $what == all || $what == tests ]]; then
  xdist=""
  python3 -c "import xdist" 2>/dev/null && xdist="-n 4"
  python3 -m pytest -q -m gpu tests/gpu $xdist -p no:cacheprovider 2>&1 | tee "$OUT/tests.log"
  test_rc=${PIPESTATUS[0]}
fi
if [[ $what == quick ]]; then
  t=tests/gpu/test_bla_gpu.py
  python3 -m pytest -q -m gpu -n 3 -p no:cacheprovider "$t::test_nan_poisoned_buffers" \
    "$t::test_triton_vs_float64_reference[2-1000-4-64-64-512-63-None-False-dtype0]" \
    "$t::test_triton_vs_float64_reference[1-1000-2-128-64-32-32-None-True-dtype0]" 2>&1 | tee "$OUT/tests.log"
  test_rc=${PIPESTATUS[0]}
  python3 -m blaviz.bench gpu --quick --out "$OUT/h200_quick.json" 2>&1 | tee "$OUT/bench.log"
  bench_rc=${PIPESTATUS[0]}
fi
if [[ $what == all || $what == bench ]]; then
  python3 -m blaviz.bench gpu --out "$OUT/h200.json" 2>&1 | tee "$OUT/bench.log"
  bench_rc=${PIPESTATUS[0]}
fi
echo "gpu_check: tests rc=$test_rc bench rc=$bench_rc" | tee -a "$OUT/env.txt"
