#!/usr/bin/env bash
# Regenerate the bundled default model dp-7net: sample + label with SevenNet-0, train, freeze,
# compress, write the card. Called by `make default-model`; each stage skips what exists.
set -euo pipefail
cd "$(dirname "$0")/../.."
RAW=scripts/default_model/work/raw
mkdir -p "$RAW"
for k in 0 1; do   # two labelling processes, one thread each
  OMP_NUM_THREADS=1 .venv/label/bin/python scripts/default_model/sample.py "$RAW" --part $k --nparts 2 &
done
wait
.venv/dp/bin/python scripts/default_model/build_dataset.py "$RAW" data/lpsc-7net
OMP_NUM_THREADS=2 DP_INTRA_OP_PARALLELISM_THREADS=2 DP_INTER_OP_PARALLELISM_THREADS=1 \
  .venv/dp/bin/python scripts/default_model/train_default.py "$@"
