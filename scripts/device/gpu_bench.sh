#!/usr/bin/env bash
# The GPU measurements of the batched mode (issue 7) in one command on a GPU machine without
# network access (a lent H100/H200 here: `run` it with `carry` [.device-kit,
# potentials/nequip-7net/model.nequip.pt2]; the kit is made here by scripts/device/pack.sh):
#   1. .venv/{dp,mace,nequip} from the kit (scripts/device/setup.sh, ~1 min);
#   2. the models' files for the GPU (NequIP: python-callback file and batch package compiled
#      for cuda, 1-2 min each; DeePMD: its compressed model);
#   3. batched vs per-structure evaluation on the GPU (python -m lpsc_lmp.md.route_checks batch-check);
#   4. with ENSEMBLE=1: `lpsc-lmp ensemble` batched and ordinary on the GPU, D of each;
#   5. (unless BENCH=0) bench/bench_batched.py --device cuda: aggregate trajectory-steps/s for batch sizes
#      SIZES against (a) one process per seed, one at a time, and (b) PROCS processes sharing
#      the GPU, plus BPROCS batched processes sharing it and the host-side ceiling (a model
#      that costs nothing).
# Results: bench/results/batched_<tag>.{md,json} and check_<model>.json, copied to $OUT when set.
# One device call has 10 minutes: run one or two MODELS per call, e.g.
#   MODELS=nequip-7net bash scripts/device/gpu_bench.sh
#   MODELS=mace-7net SIZES=1,4,16,64,300 BPROCS=2,4 bash scripts/device/gpu_bench.sh
# DEVICE=cpu runs the same steps on a CPU (how this script is tested without a GPU).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODELS=${MODELS:-nequip-7net,mace-7net,dp-7net}
SIZES=${SIZES:-1,4,16,64,128,300}
PROCS=${PROCS:-2,4,8}
BPROCS=${BPROCS:-4}
DEVICE=${DEVICE:-cuda}
TAG=${TAG:-$DEVICE}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export DP_INTRA_OP_PARALLELISM_THREADS=1 DP_INTER_OP_PARALLELISM_THREADS=1
[ "$DEVICE" = cpu ] || nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
# environments: from the kit unless this machine has them (`make install` where pip works)
[ -x .venv/dp/bin/python ] || bash scripts/device/setup.sh

IFS=, read -ra models <<< "$MODELS"
check() {  # the model's files for DEVICE, then batched = per-structure there
  local m=$1 env
  .venv/dp/bin/lpsc-lmp models prepare "$m" --device "$DEVICE" || return 1
  env=$(.venv/dp/bin/python -c "from lpsc_lmp.models.registry import load_card; print(load_card('$m').env)")
  PYTHONPATH=src .venv/$env/bin/python -m lpsc_lmp.md.route_checks batch-check "$m" --device "$DEVICE" \
    | tail -1 | tee "bench/results/check_${m}_$TAG.json"
}
for m in "${models[@]}"; do  # one model failing does not stop the others
  check "$m" || echo "check of $m failed" | tee "bench/results/check_${m}_$TAG.json"
done
# 4. optional (ENSEMBLE=1): the CLI end to end on the GPU, batched and ordinary ensembles of the
#    same seeds (workers on the GPU, per-device files, manifests), and their D side by side
if [ -n "${ENSEMBLE:-}" ]; then
  ES=${ENSEMBLE_SEEDS:-32} EPS=${ENSEMBLE_PS:-5} EW=${ENSEMBLE_WORKERS:-8}
  for m in "${models[@]}"; do
    for mode in batched ordinary; do
      if [ "$mode" = batched ]; then opts=(--batch "$ES"); else opts=(--workers "$EW" --workers-per-gpu "$EW"); fi
      gpus=(); [ "$DEVICE" = cpu ] && gpus=(--gpus none)
      .venv/dp/bin/lpsc-lmp ensemble --model "$m" --T 1000 --seeds "$ES" --time "$EPS" \
        --fit-window "$(python3 -c "print($EPS / 5)")" "$EPS" --route python-callback \
        --tag "${mode}-$TAG" "${opts[@]}" "${gpus[@]}" 2>&1 | tail -3 || echo "ensemble $mode of $m failed"
    done
  done
fi

[ "${BENCH:-1}" = 1 ] || exit 0
for m in "${models[@]}"; do
  .venv/dp/bin/python bench/bench_batched.py --device "$DEVICE" --models "$m" --sizes "$SIZES" \
    --procs "$PROCS" --batched-procs "$BPROCS" --ceiling --tag "${m%%-*}_$TAG" \
    || echo "bench of $m failed"
  if [ -n "${OUT:-}" ]; then
    cp "bench/results/batched_${m%%-*}_$TAG".{md,json} "bench/results/check_${m}_$TAG.json" "$OUT/" || true
  fi
done
