#!/usr/bin/env bash
# Train the bundled MACE model mace-7net on data/lpsc-7net (train: 308 frames, valid/test: 60).
# Runs in .venv/mace, one thread, under nice (20 epochs: about 27 min on 2 cores shared with other jobs).
# Then: python scripts/train_7net/finish.py mace WORK (float64 export, errors, card).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:-$ROOT/scripts/train_7net/work/mace}
EPOCHS=${EPOCHS:-20}
PY=$ROOT/.venv/mace/bin
mkdir -p "$WORK"; cd "$WORK"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
$PY/python "$ROOT/scripts/train_7net/prepare_data.py" data
nice -n 19 $PY/mace_run_train \
  --name mace-7net --seed 1 --device cpu --default_dtype float64 \
  --train_file data/train.extxyz --valid_file data/test.extxyz --test_file data/test.extxyz \
  --energy_key REF_energy --forces_key REF_forces --stress_key REF_stress \
  --E0s average --model MACE --num_channels 16 --max_L 0 --correlation 2 \
  --num_interactions 2 --r_max 5.0 --num_radial_basis 8 --max_ell 2 \
  --batch_size 4 --valid_batch_size 10 --max_num_epochs "$EPOCHS" --lr 0.01 \
  --energy_weight 10 --forces_weight 100 --scheduler_patience 5 \
  --ema --ema_decay 0.99 --eval_interval 5 --num_workers 0 --save_cpu --restart_latest
