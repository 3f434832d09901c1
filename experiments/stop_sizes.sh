#!/usr/bin/env bash
# When does early stopping stop, by image size: the quick denoising images (sigma 25,
# seed 0, the tables' 32-wide net) as centre crops of SIZES pixels (default 64 and 256;
# 128 is experiments/stop_candidates.sh's), with stop=wmv, patience 300 and a cap of
# 6000 steps, into RECORDS (default results/stop_sizes/runs; finished runs are skipped,
# so the script resumes). ITEMS: the images (default all nine). Then the detected step
# and the steps run per size, beside the candidates' PSNR. One job of one thread.
set -uo pipefail
records=${RECORDS:-results/stop_sizes/runs}
export ONEDNN_MAX_CPU_ISA=${ONEDNN_MAX_CPU_ISA:-AVX2} ATEN_CPU_CAPABILITY=${ATEN_CPU_CAPABILITY:-avx2}
export MKL_CBWR=${MKL_CBWR:-AVX2}
dip=${DIP:-.venv/bin/dip}
items=${ITEMS:+item=$ITEMS}
status=0
for size in ${SIZES:-64 256}; do
  "$dip" --multirun experiment=table_denoising sigma=25 seeds=1 seed=0 stop=wmv \
    stopping.patience=300 fit.num_iter=6000 "crop=$size" progress=false baselines=false \
    threads=1 "records=$records" $items || status=$?
done
${PYTHON:-.venv/bin/python} - "$records" <<'PY'
import sys
from dip.report.records import load_records
df = load_records(sys.argv[1])
cols = ["iter_stop", "steps", "iter_oracle", "psnr_stop", "psnr_stop_avg", "psnr_avg",
        "psnr_final", "psnr_oracle", "seconds"]
print(df.groupby("crop")[cols].agg(["mean", "min", "max"]).round(2).T.to_markdown())
print(df.sort_values(["crop", "image_id"])[["crop", "image_id", *cols]].round(2)
      .to_markdown(index=False))
print("commits:", ", ".join(sorted(df["commit"].astype(str).unique())),
      "| CPU:", ", ".join(sorted(df.get("cpu_model", df["device"]).astype(str).unique())))
PY
exit $status
