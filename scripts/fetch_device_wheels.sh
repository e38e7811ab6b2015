#!/usr/bin/env bash
# Download, on this machine, the wheels the GPU machine lacks to execute the book's notebooks
# (it has torch and triton but no Jupyter stack and no internet). They land in .whl/ (ignored by
# git); a device call names `.whl` in `carry` and starts with scripts/gpu_notebooks.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
rm -rf .whl && mkdir -p .whl
$PY -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    -d .whl ipykernel==7.4.0 nbclient==0.11.0 nbformat==5.11.1 plotly==7.1.0 ipywidgets==8.1.9 nbval==0.11.0
# fla (the reference GSA/GLA kernels and fla's own layers, for baselines): pure Python + Triton.
$PY -m pip download -q --no-deps --only-binary=:all: -d .whl \
    fla-core==0.6.0 flash-linear-attention==0.6.0 einops==0.8.2
du -sh .whl
