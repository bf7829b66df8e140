#!/usr/bin/env bash
# The GPU checks the issues ask for, in one run of about 8 minutes on an H100/H200, search first:
# the search step against NASLib at fp32 (the headline) and under bf16 autocast, with ATen ops
# and host time per step (issue 12), the memory plan per space on the card (issue 12), the
# loader against a torchvision DataLoader (issue 2), sampled-op vs weighted-sum supernet steps
# (issue 3), and the zero-cost proxies' rank correlation (issue 7). Every figure names its card.
#
# Prepare here (the zip travels in a git-ignored folder):
#   mkdir -p local && cp ../shared/datasets/cifar10-jpeg.zip local/
# Then with the device tool:
#   run(command="bash bench/gpu_check.sh", carry=["local"], timeout_s=570)
# The device image has PyTorch, NumPy, Pillow, rich and matplotlib: nasmix runs from
# the checkout through PYTHONPATH, without installing. SMOKE=1 runs the same steps
# tiny on a CPU, to check the script itself. Each step has its own timeout, and
# bench/search.py writes its JSON after every row, so a step cut short keeps its rows.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 NASMIX_CACHE=${NASMIX_CACHE:-/tmp/nasmix-cache}
export NASMIX_DATA=${NASMIX_DATA:-$PWD/local/cifar10-jpeg.zip}
OUT=${OUT:-/tmp/nasmix-gpu-check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
if [ "${SMOKE:-0}" = 1 ]; then
  DEV=cpu; TINY="--size tiny --images 256"
  FP32="--steps 1 --warmup 1 --host-steps 1 --spaces simple_cell --strategies gdas"
  BF16="--steps 1 --warmup 1 --no-host --spaces simple_cell --strategies gdas"
  MEM="--spaces simple_cell"; DATA="--train-subset 1000"; SPACES="--size tiny --steps 1 --spaces nb201"
  PROXIES="--archs 3 --train-images 200 --valid-images 100 --epochs 1 --proxies params,synflow"
else
  DEV=cuda; TINY=""
  FP32="--steps 20 --warmup 3 --host-steps 4 --spaces simple_cell,darts --strategies darts,gdas,drnas"
  BF16="--steps 20 --warmup 3 --no-host --spaces simple_cell,darts,hierarchical --strategies darts,gdas,drnas"
  MEM="--spaces simple_cell,darts,hierarchical"; DATA=""; SPACES="--steps 5 --spaces darts,simple_cell"
  PROXIES="--archs 30 --train-images 5000 --valid-images 2000 --epochs 3"
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } | tee "$OUT/machine.txt"
# Every step runs even when one before it failed (its figures still come back); the script's exit
# status says whether all of them succeeded, naming the ones that did not.
FAILED=()
step() {  # step NAME SECONDS COMMAND...: run it with a timeout, its output teed to $OUT/NAME.txt
  local name=$1 limit=$2; shift 2
  echo "== $name"
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.txt"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || { echo "!! $name failed (exit $rc)"; FAILED+=("$name:$rc"); }
}
step search_fp32 220 $PY bench/search.py --device $DEV $TINY --precision fp32 $FP32 --json "$OUT/search_fp32.json"
step search_bf16 100 $PY bench/search.py --device $DEV $TINY --precision bf16 $BF16 --json "$OUT/search_bf16.json"
step memory 40 $PY bench/memory.py --device $DEV $MEM       # issue 12
step data 90 $PY bench/data.py --device $DEV $DATA          # issue 2
step spaces 30 $PY bench/spaces.py --device $DEV $SPACES    # issue 3
step proxies 60 $PY bench/proxies.py --device $DEV $PROXIES # issue 7
echo "results in $OUT"
if [ ${#FAILED[@]} -gt 0 ]; then echo "failed steps: ${FAILED[*]}"; exit 1; fi
