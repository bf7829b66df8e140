#!/usr/bin/env bash
# The GPU checks the issues ask for, in one short run (about 8 minutes on an H100/H200):
# search speed and memory against NASLib (issue 4), the loader against a torchvision
# DataLoader (issue 2), sampled-op vs weighted-sum supernet steps (issue 3), and the
# zero-cost proxies' rank correlation (issue 7). Every figure names its card.
#
# Prepare here (the zip travels in a git-ignored folder):
#   mkdir -p local && cp ../shared/datasets/cifar10-jpeg.zip local/
# Then with the device tool:
#   run(command="bash bench/gpu_check.sh", carry=["local"], timeout_s=570)
# The device image has PyTorch, NumPy, Pillow, rich and matplotlib: nasmix runs from
# the checkout through PYTHONPATH, without installing. SMOKE=1 runs the same steps
# tiny on a CPU, to check the script itself.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 NASMIX_CACHE=${NASMIX_CACHE:-/tmp/nasmix-cache}
export NASMIX_DATA=${NASMIX_DATA:-$PWD/local/cifar10-jpeg.zip}
OUT=${OUT:-/tmp/nasmix-gpu-check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
if [ "${SMOKE:-0}" = 1 ]; then
  DEV=cpu; SEARCH="--size tiny --steps 1 --warmup 1 --images 256 --spaces simple_cell --strategies gdas"
  DATA="--train-subset 1000"; SPACES="--size tiny --steps 1 --spaces nb201"
  PROXIES="--archs 3 --train-images 200 --valid-images 100 --epochs 1 --proxies params,synflow"
else
  DEV=cuda; SEARCH="--steps 8 --warmup 3"; DATA=""; SPACES="--steps 5 --spaces darts,simple_cell,hierarchical"
  PROXIES="--archs 50 --train-images 5000 --valid-images 2000 --epochs 4"
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } | tee "$OUT/machine.txt"
echo "== search (issue 4)";  timeout 240 $PY bench/search.py --device $DEV $SEARCH --json "$OUT/search.json" 2>&1 | tee "$OUT/search.txt"
echo "== loader (issue 2)";  timeout 100 $PY bench/data.py --device $DEV $DATA 2>&1 | tee "$OUT/data.txt"
echo "== spaces (issue 3)";  timeout 60 $PY bench/spaces.py --device $DEV $SPACES 2>&1 | tee "$OUT/spaces.txt"
echo "== proxies (issue 7)"; timeout 130 $PY bench/proxies.py --device $DEV $PROXIES 2>&1 | tee "$OUT/proxies.txt"
echo "results in $OUT"
