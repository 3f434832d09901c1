#!/usr/bin/env bash
# The quick-profile runs behind docs/faithfulness.md: Set5 x4, the nine denoising images
# (sigma 25) and the 11 inpainting crops, seeds SEEDS (default 0,1; INPAINT_SEEDS for the
# inpainting crops, the longest runs), at today's defaults and with each paper-era switch
# on (one at a time), into RECORDS (default results/faithfulness/runs; finished runs are
# skipped, so the script resumes). Then the table of effects:
#   python experiments/faithfulness.py results/faithfulness/runs
# Runs JOBS processes of one thread each, with the CPU profiles' kernel pins (Makefile).
set -uo pipefail
records=${RECORDS:-results/faithfulness/runs}
jobs=${JOBS:-$(nproc)}
export ONEDNN_MAX_CPU_ISA=${ONEDNN_MAX_CPU_ISA:-AVX2} ATEN_CPU_CAPABILITY=${ATEN_CPU_CAPABILITY:-avx2}
export MKL_CBWR=${MKL_CBWR:-AVX2}
dip=${DIP:-.venv/bin/dip}
common=(--multirun progress=false baselines=false launcher=joblib "hydra.launcher.n_jobs=$jobs"
        "records=$records" threads=1)
seeds=${SEEDS:-0,1}
sr=(experiment=table_sr factor=4 item=set5/baby,set5/bird,set5/butterfly,set5/head,set5/woman)
den=(experiment=table_denoising sigma=25 seeds=1)
inp=(experiment=table_inpainting "seed=${INPAINT_SEEDS:-$seeds}")
status=0
switches=("" net.bn_init=uniform net.align_corners=true fit.final_input=perturbed)
for switch in "${switches[@]}"; do  # Set5 first: its runs are the shortest
  "$dip" "${common[@]}" "seed=$seeds" "${sr[@]}" $switch || status=$?
done
for switch in "${switches[@]}" fit.backtrack=official; do
  "$dip" "${common[@]}" "seed=$seeds" "${den[@]}" $switch || status=$?
done
for switch in "${switches[@]}"; do
  "$dip" "${common[@]}" "${inp[@]}" $switch || status=$?
done
exit $status
