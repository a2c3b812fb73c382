#!/usr/bin/env bash
# Creates .venv with everything MedView needs. torch goes first so that pip takes the local CPU
# build (2.13.0) instead of pulling a multi-GB CUDA build for monai's dependency.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0" || python -m pip install -q "torch>=2.3,<3"
python -m pip install -q -e ".[test,build]"
