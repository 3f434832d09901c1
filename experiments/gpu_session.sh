#!/usr/bin/env bash
# One session on a CUDA machine: the benchmark (fit step variants vs the eager fp32
# reference, batched engines, eager vs CUDA-graph PSNR on the paper's F16 sigma-25
# denoising, peak memory; at most BENCH_BUDGET_S seconds, its JSON/Markdown written after
# every section), then paper-profile inpainting runs (official settings, 11000 iterations,
# CUDA graphs) one image after the other, smallest first, until the budget is spent (build
# their table with `python -m dip.report table table_inpainting --profile paper --root
# WORKDIR/runs`).
#
#   bash experiments/gpu_session.sh WORKDIR [BUDGET_S]
#
# Environment: BENCH_ARGS (default: --quick --graph-check 500; add --amp-check 3000 for
# the bf16 check), BENCH_BUDGET_S (default 330), RUN_ARGS (overrides of the paper runs,
# e.g. fast.cuda_graph=false; graphs are the default on CUDA), DIP_COMMIT (the commit of a
# copied tree).
# Needs python3 with torch (CUDA) and this project's dependencies, and the registry images
# under DIP_DATA_ROOT. Everything lands in WORKDIR: gpu.txt, bench/<gpu>.{json,md}, runs/
# (one record per finished run; an interrupted run leaves only a hidden checkpoint), *.log.
# The script ends within BUDGET_S (+ a few seconds) and packs the finished records into
# WORKDIR/records.tgz (hidden entries left out: checkpoints, half-written records; a
# 512² paper checkpoint alone is ~27 MB), small enough to bring back in one file.
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

bench_budget=${BENCH_BUDGET_S:-330}
if (( bench_budget > $(left) )); then bench_budget=$(left); fi
log "benchmark (at most ${bench_budget} s)"
# shellcheck disable=SC2086
timeout "$bench_budget" python3 -m dip.bench ${BENCH_ARGS:---quick --graph-check 500} \
  --out "$work/bench" 2>&1 | tee "$work/bench.log"

# Smallest images first, so that the budget finishes as many runs as it can.
items=(house peppers256 Cameraman256 montage barbara boat Lena512 couple fingerprint hill man)
for item in "${items[@]}"; do
  t=$(left)
  if (( t < 40 )); then log "budget spent before $item"; break; fi
  log "paper inpainting: $item (${t} s left)"
  # shellcheck disable=SC2086
  timeout "$(( t - 5 ))" python3 -m dip experiment=table_inpainting profile=paper \
    progress=false item="$item" records="$work/runs" ${RUN_ARGS:-} 2>&1 \
    | tail -n 4 | tee -a "$work/inpainting.log"
done
if [[ -d "$work/runs" ]]; then
  tar czf "$work/records.tgz" --exclude='.*' -C "$work" runs
  log "records.tgz: $(du -k "$work/records.tgz" | cut -f1) kB"
fi
log "done"
