#!/usr/bin/env bash
# Kernel measurements in one device call: `pytest -m gpu` (TEST_K selects tests), then the
# benchmark sections given in SECTIONS (default variants,accuracy,bla,decode: launch settings side
# by side with registers and spills, bf16 accuracy at large logits, BLA timings with the
# per-launch breakdown, decoding through the public API). When the tests fail and FALLBACK_LAUNCH
# is set (LaunchConfig fields, "score_dot=tf32rn"), the benchmark runs under it instead of the
# defaults, and says so in its JSON. Everything is packed into $OUT/kernels.tgz (the device tool
# brings back at most 8 files).
#
# QUICK=1: `bench gpu --quick` (W = 512 only, T = 8192 and 32768, no variants).
#
#   SECTIONS=variants,accuracy,decode bash scripts/gpu_kernel_ab.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/.device_out}
work=$(mktemp -d)
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export TRITON_CACHE_DIR=${TRITON_CACHE_DIR:-/tmp/blaviz_cache/triton}
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/blaviz_cache/inductor}
{
  nvidia-smi --query-gpu=name,driver_version --format=csv
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
  echo "commit ${BLAVIZ_GIT_COMMIT:-unknown}"; date -u
} 2>&1 | tee "$work/env.txt"
test_rc=0
if [[ ${TESTS:-1} == 1 ]]; then
  xdist=""
  python3 -c "import xdist" 2>/dev/null && xdist="-n 8"
  timeout "${TEST_TIMEOUT:-200}" python3 -m pytest -q -rf -m gpu tests/gpu $xdist -p no:cacheprovider \
    ${TEST_K:+-k "$TEST_K"} 2>&1 | tee "$work/tests.log"
  test_rc=${PIPESTATUS[0]}
  echo "tests rc=$test_rc" | tee -a "$work/env.txt"
fi
launch=()
if [[ $test_rc == 1 && -n ${FALLBACK_LAUNCH:-} ]]; then   # 1: tests failed (not a timeout)
  launch=(--launch "$FALLBACK_LAUNCH")
  echo "tests failed: benchmark under --launch $FALLBACK_LAUNCH" | tee -a "$work/env.txt"
fi
timeout "${BENCH_TIMEOUT:-330}" python3 -m blaviz.bench gpu --sections "${SECTIONS:-variants,accuracy,bla,decode}" \
  "${launch[@]}" ${QUICK:+--quick} --out "$work/h200.json" 2>&1 | tee "$work/bench.log"
echo "bench rc=${PIPESTATUS[0]}" | tee -a "$work/env.txt"
tar -czf "$OUT/kernels.tgz" -C "$work" .
cp "$work/env.txt" "$OUT/env.txt"
