#!/usr/bin/env bash
# Set up nasmix in ./.venv: PyTorch first (pinned, so pip takes the local wheels
# where a machine has them), then nasmix with its search extras (Optuna, scikit-learn), Ray,
# its export tools (safetensors, ONNX, onnxruntime) and its test tools.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.14.1" "torchvision==0.29.1"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,search,ray,export,serve]"
echo "nasmix installed in $(pwd)/.venv (activate with: . .venv/bin/activate)"
