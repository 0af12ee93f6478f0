"""Energy, forces and stress of one configuration from LAMMPS, with a registered model.

Used by the parity tests (LAMMPS route vs the architecture's own ASE calculator) and the
benchmarks. The pair lines come from the same ``templates/pair/<route>.j2`` as the MD decks.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms

from ..lammps_env import open_lammps
from ..models.registry import ModelCard
from ..structure import sort_order, write_lammps_data
from .deck import pair_lines

#: 1 bar in eV/A^3
BAR_EV_A3 = 1e5 / 1.602176634e11

def lammps_singlepoint(atoms: Atoms, card: ModelCard) -> dict[str, np.ndarray | float]:
    """Potential energy (eV), forces (eV/A, in the order of ``atoms``) and stress (eV/A^3,
    Voigt xx yy zz yz xz xy, ASE sign convention) from LAMMPS ``run 0``."""
    if not np.allclose(atoms.cell.array, np.diag(np.diag(atoms.cell.array))):
        raise ValueError("lammps_singlepoint handles orthorhombic cells only (LAMMPS rotates "
                         "others); pass an orthorhombic cell")
    # write_lammps_data sorts atoms by type; undo that permutation for the forces
    perm = sort_order(atoms, card.type_map)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "x.data"
        write_lammps_data(atoms, data, card.type_map)
        lmp = open_lammps()
        try:
            lmp.commands_string("units metal\natom_style atomic\nboundary p p p\n"
                                "atom_modify map array\n"
                                f"read_data {data}\n{pair_lines(card)}\n"
                                "thermo_style custom step pe pxx pyy pzz pyz pxz pxy\n"
                                "run 0\n")
            n = lmp.get_natoms()
            f = np.ctypeslib.as_array(lmp.gather_atoms("f", 1, 3)).reshape(n, 3).copy()
            e = lmp.get_thermo("pe")
            p = np.array([lmp.get_thermo(k) for k in ("pxx", "pyy", "pzz", "pyz", "pxz", "pxy")])
        finally:
            lmp.close()
    forces = np.empty_like(f)
    forces[perm] = f
    # LAMMPS pressure includes the kinetic part, zero here (no velocities)
    return {"energy": float(e), "forces": forces, "stress": -p * BAR_EV_A3}
