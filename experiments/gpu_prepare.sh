#!/usr/bin/env bash
# Prepares this checkout for a call on a lent GPU machine, whose Python has torch, pandas,
# scikit-image and matplotlib but not hydra-core / omegaconf, and which cannot reach the
# data root or a package index:
#   .whl/      wheels of omegaconf, antlr4-python3-runtime and hydra-core (pure Python)
#   .gpudata/  the registry images the GPU session reads: the paper tables' images
#              (paper/: inpainting, SR Set5 and Set14, denoising; about 35 MB)
# Both folders are listed in .git/info/exclude, so they travel only when a call carries
# them. Prints the preamble of the device command.
#
#   bash experiments/gpu_prepare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=${DIP_DATA_ROOT:-../shared/data}
[[ -f $root/MANIFEST.csv ]] || { echo "no data root at $root; set DIP_DATA_ROOT" >&2; exit 2; }
exclude=.git/info/exclude
for dir in /.whl/ /.gpudata/; do
  grep -qxF "$dir" "$exclude" 2>/dev/null || echo "$dir" >>"$exclude"
done

rm -rf .whl && mkdir -p .whl
# versions of this project's environment (pure-Python wheels: any Python 3 runs them)
.venv/bin/pip wheel -q --no-deps -w .whl \
  "omegaconf==$(.venv/bin/python -c 'import omegaconf; print(omegaconf.__version__)')" \
  "antlr4-python3-runtime==4.9.3" \
  "hydra-core==$(.venv/bin/python -c 'import hydra; print(hydra.__version__)')"

rm -rf .gpudata
mkdir -p .gpudata
cp -r "$root"/paper .gpudata/
du -sh .whl .gpudata

cat <<EOF
device call: carry [".whl", ".gpudata"], command starting with
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=\$PWD:/tmp/site PYTHONUNBUFFERED=1 DIP_DATA_ROOT=\$PWD/.gpudata DIP_COMMIT=$(git rev-parse HEAD) || exit;
then e.g.: bash experiments/gpu_session.sh \$OUT/w 540
EOF
