#!/usr/bin/env bash
# Train the bundled NequIP model nequip-7net on data/lpsc-7net with templates/train/nequip-7net.yaml
# in .venv/nequip, one thread, under nice (about 18 min on 2 shared cores).
# Then: python scripts/train_7net/finish.py nequip WORK (compile for ASE, errors, card).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:-$ROOT/scripts/train_7net/work/nequip}
PY=$ROOT/.venv/nequip/bin
mkdir -p "$WORK"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
nice -n 19 $PY/nequip-train -cp "$ROOT/templates/train" -cn nequip-7net.yaml \
  ++data_dir="$ROOT/data/lpsc-7net" hydra.run.dir="$WORK" "${@:2}"
