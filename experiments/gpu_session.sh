#!/usr/bin/env bash
# One session on a CUDA machine: paper-profile runs first, then the benchmark.
#
#   bash experiments/gpu_session.sh WORKDIR [BUDGET_S]
#
# Paper runs: the runs of the three paper tables that the records lack
# (experiments/paper_queue.py: inpainting, SR Set5, denoising, SR Set14; the cheapest of
# each block first), one process each, until all but BENCH_BUDGET_S of the budget is
# spent. Once a run has finished, the session's own rate (seconds per megapixel-step)
# tells which of the next runs can still finish; one that cannot is passed over for a
# cheaper one. Sessions add to one set of records: the committed ones
# (results/paper-runs/, run from the repository root) are copied into WORKDIR/runs first,
# and WORKDIR/records.tgz holds only the records this session added (unpack it into
# results/paper-runs/ and commit: .gitignore leaves out the images that restate the test
# data). `make report-inpainting PROFILE=paper` (and -sr, -denoising) then build the
# partial tables from the records, fitting nothing; they say which images they hold.
#
# Benchmark: what is left of the budget, only when BENCH_BUDGET_S > 0. Its default
# (BENCH_ARGS) measures the rows not measured yet with the current method: the batched
# engines at 256² and 512². Rows measured now replace those of the same size, variant or
# engine in the committed file of this GPU (results/bench/<gpu>.json, copied into
# WORKDIR/bench first), each naming the commit that measured it.
#
# Environment: BENCH_BUDGET_S (default a third of the budget; 0 skips the benchmark),
# BENCH_ARGS, RUN_ARGS (overrides of the paper runs, e.g. fast.cuda_graph=false), ITEMS
# (only these items, as the tables' sweeps name them: "house set5/baby F16"), DIP_COMMIT
# (the commit of a copied tree). Needs python3 with torch (CUDA) and this project's
# dependencies, and the registry images under DIP_DATA_ROOT: experiments/gpu_prepare.sh
# puts the missing wheels and the images into ignored folders of the checkout that a
# device call can carry, and prints the command's preamble. Everything lands in WORKDIR:
# gpu.txt, queue.txt, runs/ (one record per finished run; an interrupted run leaves only
# a hidden checkpoint), bench/<gpu>.{json,md}, *.log. It ends within BUDGET_S (+ seconds).
set -uo pipefail
work=${1:?usage: gpu_session.sh WORKDIR [BUDGET_S]}
budget=${2:-540}
mkdir -p "$work"
start=$(date +%s)
left() { echo $(( budget - ($(date +%s) - start) )); }
log() { echo "[$(( $(date +%s) - start )) s] $*"; }
reserve=${BENCH_BUDGET_S:-$(( budget / 3 ))}
here=$(cd "$(dirname "$0")" && pwd)

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
  | tee "$work/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" \
  | tee -a "$work/gpu.txt"

# Records of earlier sessions: their runs are not queued.
mkdir -p "$work/runs"
if [[ -d results/paper-runs ]]; then cp -r results/paper-runs/. "$work/runs/"; fi
before=$(ls "$work/runs" | sort)
read -r -a run_args <<< "progress=false ${RUN_ARGS:-}"
only=()
if [[ -n ${ITEMS:-} ]]; then only=(--items "$ITEMS"); fi
python3 "$here/paper_queue.py" "$work/runs" "${only[@]}" "${run_args[@]}" \
  > "$work/queue.txt" 2> "$work/queue.log" || log "no queue (exit $?)"
tee -a "$work/runs.log" < "$work/queue.log"
spent=0      # seconds of this session's finished runs
done_mps=0   # and their megapixel-steps
exec 3< "$work/queue.txt"
while IFS=$'\t' read -r -u 3 mps args; do
  t=$(( $(left) - reserve ))
  if (( t < 40 )); then log "the paper runs' budget is spent"; break; fi
  if (( spent > 0 )); then
    est=$(awk -v s="$spent" -v d="$done_mps" -v c="$mps" 'BEGIN { printf "%d", s / d * c }')
    if (( est > t - 10 )); then
      log "passed over (about $est s, $t s left): $args" | tee -a "$work/runs.log"
      continue
    fi
  fi
  log "paper run ($mps Mpx-steps, $t s left): $args" | tee -a "$work/runs.log"
  t0=$(date +%s)
  read -r -a made <<< "$args"
  timeout "$(( t - 5 ))" python3 -m dip "${made[@]}" records="$work/runs" 2>&1 \
    | tail -n 4 | tee -a "$work/runs.log"
  status=${PIPESTATUS[0]}
  if (( status == 0 )); then
    spent=$(( spent + $(date +%s) - t0 ))
    done_mps=$(awk -v d="$done_mps" -v c="$mps" 'BEGIN { print d + c }')
  elif (( status == 124 )); then
    log "stopped at the budget: $args" | tee -a "$work/runs.log"
  else
    log "exit $status: $args" | tee -a "$work/runs.log"
  fi
done
exec 3<&-
mapfile -t added < <(comm -13 <(echo "$before") <(ls "$work/runs" | sort))
if (( ${#added[@]} )); then
  tar czf "$work/records.tgz" --exclude='.*' -C "$work/runs" "${added[@]}"
  log "records.tgz: ${#added[@]} new record(s), $(du -k "$work/records.tgz" | cut -f1) kB"
fi

bench_budget=$(( $(left) - 5 ))
if (( reserve > 0 && bench_budget >= 30 )); then
  log "benchmark (at most ${bench_budget} s)"
  mkdir -p "$work/bench"
  cp results/bench/nvidia-*.json "$work/bench/" 2>/dev/null || true
  default_bench="--quick --skip single,memory --batched-sizes 256,512"
  default_bench+=" --engines grouped,threads+graphs"
  # shellcheck disable=SC2086
  timeout "$bench_budget" python3 -m dip.bench ${BENCH_ARGS:-$default_bench} --merge \
    --out "$work/bench" 2>&1 | tee "$work/bench.log"
fi
log "done"
