#!/usr/bin/env bash
# Kernel settings compared on the GPU in one call: `python -m blaviz.bench ab --variants V` (each
# variant gated against float64, then timed at the targets' shape, registers and spills recorded),
# then the `pytest -m gpu` suite under each CONFIG given in TEST_CONFIGS (JSON objects separated by
# ';', applied through BLAVIZ_TRITON_CONFIG; '{}' is the defaults). Output under $OUT.
#
#   VARIANTS="base:;pre:preround=true" TEST_CONFIGS='{};{"preround": true}' bash scripts/gpu_kernel_ab.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/.device_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export TRITON_CACHE_DIR=${TRITON_CACHE_DIR:-/tmp/blaviz_cache/triton}
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name(0))" \
  | tee "$OUT/env.txt"
timeout "${AB_TIMEOUT:-360}" python3 -m blaviz.bench ab --variants "$VARIANTS" --out "$OUT/h200_variants.json" 2>&1 \
  | tee "$OUT/variants.log"
echo "variants rc=${PIPESTATUS[0]}" | tee -a "$OUT/env.txt"
i=0
IFS=';' read -ra cfgs <<<"${TEST_CONFIGS:-}"
for cfg in "${cfgs[@]}"; do
  [ -n "$cfg" ] || continue
  echo "=== tests under BLAVIZ_TRITON_CONFIG=$cfg" | tee "$OUT/tests_$i.log"
  BLAVIZ_TRITON_CONFIG=$cfg timeout "${TEST_TIMEOUT:-150}" python3 -m pytest -q -m gpu tests/gpu -p no:cacheprovider \
    2>&1 | tee -a "$OUT/tests_$i.log"
  echo "tests $i ($cfg) rc=${PIPESTATUS[0]}" | tee -a "$OUT/env.txt"
  i=$((i + 1))
done
