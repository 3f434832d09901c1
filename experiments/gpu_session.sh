#!/usr/bin/env bash
# One session on a CUDA machine: the benchmark (fit step vs the eager fp32 reference,
# batched engines, peak memory, bf16 vs fp32 PSNR on the paper's F16 sigma-25 denoising),
# then paper-profile inpainting runs (official settings, 11000 iterations) one image after
# the other until the time budget is spent (build their table with
# `python -m dip.report table table_inpainting --profile paper --root WORKDIR/runs`).
#
#   bash experiments/gpu_session.sh WORKDIR [BUDGET_S]
#
# Needs python3 with torch (CUDA) and this project's dependencies, and the registry images
# under DIP_DATA_ROOT. Everything lands in WORKDIR: bench/<gpu>.{json,md}, runs/ (one
# record per finished run; an interrupted run leaves only its checkpoint), *.log.
set -uo pipefail
work=${1:?usage: gpu_session.sh WORKDIR [BUDGET_S]}
budget=${2:-540}
mkdir -p "$work"
start=$(date +%s)
left() { echo $(( budget - ($(date +%s) - start) )); }
log() { echo "[$(( $(date +%s) - start )) s] $*"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$work/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" \
  | tee -a "$work/gpu.txt"

log "benchmark"
timeout "$(left)" python3 -m dip.bench --quick --amp-check 3000 --out "$work/bench" \
  2>&1 | tee "$work/bench.log"

# Smallest images first, so that the budget finishes as many runs as it can.
items=(house peppers256 Cameraman256 montage barbara boat Lena512 couple fingerprint hill man)
for item in "${items[@]}"; do
  t=$(left)
  if (( t < 30 )); then log "budget spent before $item"; break; fi
  log "paper inpainting: $item (${t} s left)"
  timeout "$t" python3 -m dip experiment=table_inpainting profile=paper progress=false \
    item="$item" records="$work/runs" 2>&1 | tail -n 4 | tee -a "$work/inpainting.log"
done
log "done"
