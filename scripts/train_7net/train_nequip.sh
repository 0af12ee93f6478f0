#!/usr/bin/env bash
# Retrain the bundled NequIP model nequip-7net on data/lpsc-7net (about 18 min on 2 shared cores).
# The config that was templates/train/nequip-7net.yaml is now templates/train/nequip.yaml.j2
# (rendered with the same values by `lpsc-lmp train --arch nequip`, src/lpsc_lmp/training/nequip.py,
# which also repairs the EMA checkpoint, packages, compiles and writes the card; `make retrain`).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
exec nice -n 19 "$ROOT/.venv/dp/bin/lpsc-lmp" train --arch nequip --dataset lpsc-7net \
  --name nequip-7net --reference 7net --epochs 60 --max-minutes 18 --seed 456 --force "$@"
