#!/usr/bin/env bash
# One session on a CUDA machine: the benchmark (fit step variants vs the eager fp32
# reference, batched engines, eager vs CUDA-graph PSNR on the paper's F16 sigma-25
# denoising, peak memory; at most BENCH_BUDGET_S seconds, its JSON/Markdown written after
# every section), then paper-profile inpainting runs (official settings, 11000 iterations,
# CUDA graphs) one image after the other, smallest first, until the budget is spent.
#
#   bash experiments/gpu_session.sh WORKDIR [BUDGET_S]
#
# The paper table needs about 22 minutes of an H200 (11000 steps: ~65 s an image at 256²,
# ~155 s at 512²), more than one lent session has, so sessions add to one set of records:
# the committed ones (results/paper-runs/, run from the repository root) are copied into
# WORKDIR/runs first and their runs are skipped, and WORKDIR/records.tgz holds only the
# records this session added (unpack it into results/paper-runs/ and commit: .gitignore
# leaves out the images that restate the test data). `make table-inpainting PROFILE=paper`
# then builds the table from results/paper-runs/ (a partial one says which images it has).
#
# The benchmark adds to the committed file of this GPU (results/bench/<gpu>.json, copied
# into WORKDIR/bench first): rows measured now replace those of the same size, variant or
# engine, and each row names the commit that measured it.
#
# Environment: BENCH_ARGS (default: the NCHW and channels_last graph variants in fp32 and
# bf16 channels_last, the grouped and threads+graphs engines, and the graph check; add
# --amp-check 3000 for the bf16 PSNR check), BENCH_BUDGET_S (default 330; 0 skips the
# benchmark), RUN_ARGS (overrides of the paper runs, e.g. fast.cuda_graph=false; graphs
# are the default on CUDA), ITEMS (the images to run, in order; default smallest first),
# DIP_COMMIT (the commit of a copied tree).
# Needs python3 with torch (CUDA) and this project's dependencies, and the registry images
# under DIP_DATA_ROOT: experiments/gpu_prepare.sh puts the missing wheels and the images
# into ignored folders of the checkout that a device call can carry, and prints the
# command's preamble. Everything lands in WORKDIR: gpu.txt, bench/<gpu>.{json,md},
# runs/ (one record per finished run; an interrupted run leaves only a hidden checkpoint),
# *.log. The script ends within BUDGET_S (+ a few seconds).
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
if (( bench_budget > 0 )); then
  log "benchmark (at most ${bench_budget} s)"
  mkdir -p "$work/bench"
  cp results/bench/nvidia-*.json "$work/bench/" 2>/dev/null || true
  default_bench="--quick --variants fp32-graph,fp32-cl-graph,bf16-cl-graph"
  default_bench+=" --engines grouped,threads+graphs --graph-check 500"
  # shellcheck disable=SC2086
  timeout "$bench_budget" python3 -m dip.bench ${BENCH_ARGS:-$default_bench} --merge \
    --out "$work/bench" 2>&1 | tee "$work/bench.log"
fi

# Records of earlier sessions: their runs are skipped.
mkdir -p "$work/runs"
if [[ -d results/paper-runs ]]; then cp -r results/paper-runs/. "$work/runs/"; fi
before=$(ls "$work/runs" | sort)
# Smallest images first, so that the budget finishes as many runs as it can.
default_items="house peppers256 Cameraman256 montage barbara boat Lena512 couple"
default_items+=" fingerprint hill man"
read -r -a items <<< "${ITEMS:-$default_items}"
for item in "${items[@]}"; do
  t=$(left)
  if (( t < 40 )); then log "budget spent before $item"; break; fi
  log "paper inpainting: $item (${t} s left)"
  # shellcheck disable=SC2086
  timeout "$(( t - 5 ))" python3 -m dip experiment=table_inpainting profile=paper \
    progress=false item="$item" records="$work/runs" ${RUN_ARGS:-} 2>&1 \
    | tail -n 4 | tee -a "$work/inpainting.log"
  status=${PIPESTATUS[0]}
  if (( status )); then
    if (( status == 124 )); then why="stopped at the budget"; else why="exit $status"; fi
    log "$item: $why" | tee -a "$work/inpainting.log"
  fi
done
mapfile -t added < <(comm -13 <(echo "$before") <(ls "$work/runs" | sort))
if (( ${#added[@]} )); then
  tar czf "$work/records.tgz" --exclude='.*' -C "$work/runs" "${added[@]}"
  log "records.tgz: ${#added[@]} new record(s), $(du -k "$work/records.tgz" | cut -f1) kB"
fi
log "done"
