#!/usr/bin/env bash
# The quick-profile runs that decide the claims scorecard (conf/claims.yaml), at 3 seeds,
# cheapest verdicts first: denoising (four claims and the seed ensemble), Fig. 2's curves,
# early stopping without ground truth, inpainting, Fig. 8's architectures, SR, then the
# depth x lr study. Finished runs are
# skipped, so the script resumes where it stopped. Each sweep runs JOBS processes of one
# thread with the AVX2 kernel pins, as `make table-* PROFILE=quick` does.
#   bash experiments/claims_quick.sh [RECORDS]   (a log per sweep)
# RECORDS defaults to results/quick-runs, committed without images (.gitignore), so that
# the runs of one session are skipped by the next and the scorecard's rows can be exported
# from them: python -m dip.report export --root results/quick-runs.
set -uo pipefail
cd "$(dirname "$0")/.."
RECORDS=${1:-results/quick-runs}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
export DIP_DATA_ROOT="${DIP_DATA_ROOT:-$(cd .. && pwd)/shared/data}"
export ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2
LOGS=results/claims_runs
mkdir -p "$LOGS"
dip() {
  .venv/bin/dip --multirun progress=false profile=quick launcher=joblib \
    hydra.launcher.n_jobs="$JOBS" "$@"
}
sweep() {  # sweep NAME OVERRIDES...: one sweep, its log, its exit status noted
  local name=$1; shift
  echo "$(date -Is) start $name" >> "$LOGS/queue.log"
  dip "$@" > "$LOGS/$name.log" 2>&1
  echo "$(date -Is) end $name status $?" >> "$LOGS/queue.log"
}
SEEDS=seed=0,1,2
sweep table_denoising experiment=table_denoising records="$RECORDS"   # seeds=3 ensembles
sweep fig_prior_curves experiment=fig_prior_curves "$SEEDS" records="$RECORDS"
sweep table_denoising_wmv experiment=table_denoising sigma=25 stop=wmv \
  stopping.patience=300 seeds=1 "$SEEDS" records="$RECORDS"
sweep table_inpainting experiment=table_inpainting "$SEEDS" records="$RECORDS"
sweep fig_architectures experiment=fig_architectures "$SEEDS" records="$RECORDS"
sweep table_sr experiment=table_sr "$SEEDS" records="$RECORDS"
sweep sweep_depth_lr experiment=sweep_depth_lr "$SEEDS" records="$RECORDS/sweep_depth_lr"
sweep sweep_depth_lr_skip experiment=sweep_depth_lr "$SEEDS" arch=skip5 fit.lr=0.01 \
  records="$RECORDS/sweep_depth_lr"
echo "$(date -Is) queue done" >> "$LOGS/queue.log"
