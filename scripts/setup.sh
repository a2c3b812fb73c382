#!/usr/bin/env bash
# Creates .venv with everything MedView needs. torch goes first so that pip takes the local CPU
# build (2.13.0) instead of pulling a multi-GB CUDA build for monai's dependency.
# A second run with an unchanged pyproject.toml (and this script) installs nothing and prints nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
stamp=.venv/.medview-setup
want=$(cat pyproject.toml scripts/setup.sh | python -c "import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())")
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && python -c "import torch, medview" 2>/dev/null; then
  exit 0
fi
python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0" || python -m pip install -q "torch>=2.3,<3"
python -m pip install -q -e ".[test,build]"
echo "$want" > "$stamp"
