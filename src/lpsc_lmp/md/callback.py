"""The python-callback route: a model's own ASE calculator drives LAMMPS through ``fix external``.

The deck (``templates/pair/python-callback.j2``) sets ``pair_style zero <cutoff>`` (neighbour
bookkeeping only), ``fix ext all external pf/callback 1 1`` and ``fix_modify ext energy yes
virial yes``, so ``pe``, ``etotal`` and ``press`` include the model. :func:`attach` loads the
model's calculator (:func:`lpsc_lmp.models.calculators.load_calculator`) in the worker and
registers a callback that, every step, copies the LAMMPS positions (ordered by atom ID) and box
into an :class:`ase.Atoms`, evaluates it, writes the forces into the fix's array and sets the
global energy and virial. Serial only (one MPI rank holds every atom; ``atom_modify map
array``). The handle :func:`attach` returns must stay alive for the whole run.

:class:`CallbackFrame` (box, atom order, energy/virial setter, the Atoms) is shared with the
lock-step replicas of batched runs (:mod:`lpsc_lmp.md.lockstep`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..devices import default_device
from ..errors import RouteError
from ..models.calculators import load_calculator
from ..models.routes import ALL_ROUTES, CALLBACK_ROUTE, NATIVE_ROUTES

#: The fix ID used by templates/pair/python-callback.j2.
FIX_ID = "ext"


class BoxReader:
    """The LAMMPS box as (cell rows a, b, c; origin boxlo), read at every MD step:
    ``lammps_extract_box`` of the LAMMPS C library into buffers allocated once
    (``extract_box`` of the Python module allocates nine ctypes objects per call, a large
    part of the host cost of a batched replica-step)."""

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
    call, several times the cost of this way; the first call goes through them, so a wrong fix
    ID is still reported."""

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
    if route == CALLBACK_ROUTE:
        return attach_python_callback(lmp, meta)
    raise RouteError(f"route '{route}' cannot be attached here; known: {', '.join(ALL_ROUTES)}")
