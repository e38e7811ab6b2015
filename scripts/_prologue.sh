# Sourced by every GPU script (`source "$(dirname "$0")/_prologue.sh"`): the same start for all.
#  * the working directory is the repository root, and it is on PYTHONPATH;
#  * OUT: where results go (the device tool sets it; elsewhere ./.device_out), created;
#  * PY: the interpreter (default python3);
#  * compiler caches outside the results: TRITON_CACHE_DIR, TORCHINDUCTOR_CACHE_DIR;
#  * wheels in .whl/ (scripts/fetch_device_wheels.sh: the Jupyter stack, fla-core) are installed
#    once per machine into BLAVIZ_SITE and put on PYTHONPATH (a nested script reuses them).
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
OUT=${OUT:-$PWD/.device_out}
mkdir -p "$OUT"
PY=${PY:-python3}
export OUT PY PYTHONUNBUFFERED=1 TQDM_MININTERVAL=${TQDM_MININTERVAL:-5}
export TRITON_CACHE_DIR=${TRITON_CACHE_DIR:-/tmp/blaviz_cache/triton}
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/blaviz_cache/inductor}
case ":${PYTHONPATH:-}:" in *":$PWD:"*) ;; *) export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} ;; esac
if [ -z "${BLAVIZ_SITE:-}" ] && ls .whl/*.whl >/dev/null 2>&1; then
  export BLAVIZ_SITE=/tmp/blaviz_site
  if $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$BLAVIZ_SITE" .whl/*.whl; then
    export PYTHONPATH=$PYTHONPATH:$BLAVIZ_SITE
  else
    echo "_prologue: installing .whl/*.whl failed" >&2
  fi
fi
