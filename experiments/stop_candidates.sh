#!/usr/bin/env bash
# Which output to keep when there is no ground truth: the quick denoising images (sigma 25
# and 50, seed 0) with early stopping (stop=wmv, patience 300, a cap of 3000 steps) into
# RECORDS (default results/stop_candidates/runs; finished runs are skipped, so the script
# resumes), then the mean PSNR of each candidate: the raw output at the detected step
# (psnr_stop), the averaged output there (psnr_stop_avg), the averaged and raw outputs at
# the end (psnr_avg, psnr_final), beside the oracle. One job of THREADS threads.
set -uo pipefail
records=${RECORDS:-results/stop_candidates/runs}
export ONEDNN_MAX_CPU_ISA=${ONEDNN_MAX_CPU_ISA:-AVX2} ATEN_CPU_CAPABILITY=${ATEN_CPU_CAPABILITY:-avx2}
export MKL_CBWR=${MKL_CBWR:-AVX2}
dip=${DIP:-.venv/bin/dip}
"$dip" --multirun experiment=table_denoising sigma=25,50 seeds=1 seed=0 stop=wmv \
  stopping.patience=300 fit.num_iter=3000 progress=false baselines=false \
  "threads=${THREADS:-1}" "records=$records"
status=$?
.venv/bin/python - "$records" <<'PY'
import sys
from dip.report.records import load_records
df = load_records(sys.argv[1])
cols = ["psnr_stop", "psnr_stop_avg", "psnr_avg", "psnr_final", "psnr_oracle", "iter_stop", "steps"]
print(df.groupby("sigma")[cols].mean().round(2).to_markdown())
print(df.sort_values(["sigma", "image_id"])[["sigma", "image_id", *cols]].round(2)
      .to_markdown(index=False))
print("commits:", ", ".join(sorted(df["commit"].astype(str).unique())),
      "| CPU:", ", ".join(sorted(df.get("cpu_model", df["device"]).astype(str).unique())))
PY
exit $status
