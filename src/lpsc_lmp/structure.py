"""The Li6PS5Cl (LPSC) argyrodite cell, built from published Wyckoff data.

The ordered 52-atom conventional cell Li24P4S20Cl4 is generated in space group F-43m (No. 216)
from the refinement of Deiseroth et al. (2008, X-ray, 296 K):

- Cl 4a (0, 0, 0); S 4d (1/4, 1/4, 3/4); P 4b (0, 0, 1/2);
- S 16e (x, x, x) with x = 0.38053, i.e. the published (0.11947, -0.11947, 0.61947) setting;
- Li 48h (x, x, z) with x = 0.3148, z = 0.982, half occupied.

The 48 Li sites come in 24 close pairs (the 48h-24g-48h "doublets", ~1.9 A apart). Exactly one
site of each pair is kept. All 48h sites are symmetry-equivalent in the ordered framework, so the
Li-framework interaction is the same for every choice and the choices differ only through the
Li-Li interaction. We take the choice with the lowest Li+-Li+ electrostatic energy (screened
Coulomb, erfc(alpha r)/r, summed over periodic images to 12 A), found by greedy single-pair flips
from 64 starts drawn from a fixed random seed. The result is deterministic and is checked by
tests (composition, charge balance, minimum distances).

Lengths in Angstrom throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.spacegroup import crystal
from scipy.special import erfc

from .errors import StructureError
from .files import sha256_file, write_atomic

#: Lattice parameter of Deiseroth et al. 2008 (A).
A_EXPERIMENT = 9.859
#: Wyckoff parameters (Deiseroth et al. 2008).
X_S16E = 0.38053
X_LI48H, Z_LI48H = 0.3148, 0.982
#: Formal charges used for the charge-balance check.
FORMAL_CHARGES = {"Li": 1, "P": 5, "S": -2, "Cl": -1}
#: The type order of every bundled model.
DEFAULT_TYPE_MAP = ("Li", "P", "S", "Cl")
#: Smallest interatomic distance accepted for a starting structure (A).
MIN_DISTANCE_A = 1.5


@dataclass(frozen=True)
class StructureReport:
    """Facts about a structure, as checked before it is simulated."""

    formula: str
    n_atoms: int
    counts: dict[str, int]
    charge: int
    min_distance_A: float
    volume_A3: float
    a_A: float


def _framework(a: float) -> Atoms:
    return crystal(
        ["Cl", "S", "P", "S"],
        basis=[(0, 0, 0), (0.25, 0.25, 0.75), (0, 0, 0.5), (X_S16E, X_S16E, X_S16E)],
        spacegroup=216,
        cellpar=[a, a, a, 90, 90, 90],
    )


def li_48h_sites(a: float = A_EXPERIMENT) -> np.ndarray:
    """Cartesian positions (48, 3) of the Li 48h sites of the conventional cell (A)."""
    li = crystal(["Li"], basis=[(X_LI48H, X_LI48H, Z_LI48H)], spacegroup=216,
                 cellpar=[a, a, a, 90, 90, 90])
    if len(li) != 48:
        raise RuntimeError(f"expected 48 Li 48h sites, got {len(li)}")
    return li.get_positions()


def _mic_vectors(pos: np.ndarray, a: float) -> np.ndarray:
    d = pos[None, :, :] - pos[:, None, :]
    return d - a * np.round(d / a)


def doublet_pairs(sites: np.ndarray, a: float) -> np.ndarray:
    """Pairs (24, 2) of 48h site indices that are each other's nearest neighbour."""
    r = np.linalg.norm(_mic_vectors(sites, a), axis=-1)
    np.fill_diagonal(r, np.inf)
    nn = np.argmin(r, axis=1)
    pairs = sorted({tuple(sorted((i, int(j)))) for i, j in enumerate(nn) if nn[j] == i})
    if len(pairs) != 24:
        raise RuntimeError(f"expected 24 Li doublets, found {len(pairs)}")
    return np.array(pairs)


def _coulomb_matrix(sites: np.ndarray, a: float, alpha: float = 0.3,
                    rcut: float = 12.0) -> np.ndarray:
    """Screened Coulomb energy erfc(alpha r)/r between all site pairs, periodic images to rcut."""
    n_img = int(np.ceil(rcut / a))
    shifts = np.array([(i, j, k) for i in range(-n_img, n_img + 1)
                       for j in range(-n_img, n_img + 1)
                       for k in range(-n_img, n_img + 1)], float) * a
    d = sites[None, :, None, :] - sites[:, None, None, :] + shifts[None, None, :, :]
    r = np.linalg.norm(d, axis=-1)
    with np.errstate(divide="ignore"):
        e = np.where((r > 1e-8) & (r < rcut), erfc(alpha * r) / r, 0.0)
    return e.sum(axis=2)


def choose_li_sites(a: float = A_EXPERIMENT, n_starts: int = 64, seed: int = 0) -> np.ndarray:
    """Indices (24,) into :func:`li_48h_sites` of the lowest-energy one-per-doublet ordering."""
    sites = li_48h_sites(a)
    pairs = doublet_pairs(sites, a)
    coul = _coulomb_matrix(sites, a)
    rng = np.random.default_rng(seed)

    def energy(choice: np.ndarray) -> float:
        idx = pairs[np.arange(len(pairs)), choice]
        return float(coul[np.ix_(idx, idx)].sum())

    best: tuple[float, tuple[int, ...]] | None = None
    for _ in range(n_starts):
        choice = rng.integers(0, 2, len(pairs))
        e = energy(choice)
        improved = True
        while improved:
            improved = False
            for k in range(len(pairs)):
                choice[k] ^= 1
                e_new = energy(choice)
                if e_new < e - 1e-12:
                    e, improved = e_new, True
                else:
                    choice[k] ^= 1
        key = (round(e, 9), tuple(int(c) for c in choice))
        if best is None or key < best:
            best = key
    assert best is not None
    chosen = pairs[np.arange(len(pairs)), np.array(best[1])]
    return np.sort(chosen)


def build_lpsc(a: float = A_EXPERIMENT, supercell: int = 1) -> Atoms:
    """The ordered Li24P4S20Cl4 cell (52 atoms), repeated ``supercell`` times along each axis.

    Atoms are sorted by species in the order Li, P, S, Cl and by position within a species.
    """
    if a <= 0:
        raise StructureError(f"lattice parameter must be positive, got {a} A; pass e.g. --a 9.859")
    if supercell < 1:
        raise StructureError(f"supercell must be >= 1, got {supercell}; pass e.g. --supercell 2")
    frame = _framework(a)
    li_pos = li_48h_sites(a)[choose_li_sites(a)]
    atoms = Atoms("Li24", positions=li_pos, cell=frame.cell, pbc=True) + frame
    atoms = sort_atoms(atoms, DEFAULT_TYPE_MAP)
    atoms.wrap()
    if supercell > 1:
        atoms = sort_atoms(atoms.repeat((supercell,) * 3), DEFAULT_TYPE_MAP)
    return atoms


def sort_order(atoms: Atoms, type_map: tuple[str, ...] | list[str]) -> list[int]:
    """Indices that order atoms by their element's place in ``type_map``, then by position."""
    order = {s: i for i, s in enumerate(type_map)}
    missing = sorted(set(atoms.get_chemical_symbols()) - set(order))
    if missing:
        raise StructureError(
            f"elements {missing} are not in the type map {list(type_map)}; "
            "use a model whose type map contains them")
    frac = atoms.get_scaled_positions(wrap=True).round(8)
    keys = [(order[s], *f) for s, f in zip(atoms.get_chemical_symbols(), frac, strict=False)]
    return sorted(range(len(atoms)), key=lambda i: keys[i])


def sort_atoms(atoms: Atoms, type_map: tuple[str, ...] | list[str]) -> Atoms:
    """Atoms reordered by the position of their element in ``type_map``, then by position."""
    return atoms[sort_order(atoms, type_map)]


def min_distance(atoms: Atoms) -> float:
    """Smallest interatomic distance under periodic boundary conditions (A)."""
    from ase.neighborlist import neighbor_list

    d = neighbor_list("d", atoms, cutoff=4.0)
    return float(d.min()) if len(d) else float("inf")


def check_structure(atoms: Atoms, formal_charges: dict[str, int] | None = None,
                    min_allowed: float = MIN_DISTANCE_A) -> StructureReport:
    """Check charge balance and minimum distance; raise :class:`StructureError` if bad."""
    charges = FORMAL_CHARGES if formal_charges is None else formal_charges
    symbols = atoms.get_chemical_symbols()
    counts = {s: symbols.count(s) for s in dict.fromkeys(symbols)}
    unknown = sorted(set(counts) - set(charges))
    if unknown:
        raise StructureError(f"no formal charge known for {unknown}; LPSC has only "
                             f"{sorted(charges)}")
    charge = sum(charges[s] * n for s, n in counts.items())
    if charge != 0:
        raise StructureError(f"structure is not charge balanced (net {charge:+d} e with formal "
                             f"charges {charges}); check the composition")
    dmin = min_distance(atoms)
    if dmin < min_allowed:
        raise StructureError(f"atoms {dmin:.2f} A apart (< {min_allowed} A); fix the structure "
                             "or the lattice parameter")
    cell = atoms.cell.cellpar()
    return StructureReport(formula=atoms.get_chemical_formula(mode="metal"), n_atoms=len(atoms),
                           counts=counts, charge=charge, min_distance_A=dmin,
                           volume_A3=float(atoms.get_volume()), a_A=float(cell[0]))


def read_structure(path: str | Path) -> Atoms:
    """Any ASE-readable structure file, with a one-line error when it cannot be read."""
    from ase.io import read

    p = Path(path)
    if not p.is_file():
        raise StructureError(f"structure file {p} not found; pass an existing ASE-readable file")
    try:
        atoms = read(p)
    except Exception as exc:  # ASE raises many types for unreadable files
        raise StructureError(f"cannot read {p} with ASE ({exc.__class__.__name__}); "
                             "pass a CIF, POSCAR, extxyz or LAMMPS data file") from None
    if not atoms.pbc.all() or atoms.cell.rank != 3:
        raise StructureError(f"{p} has no 3D periodic cell; LPSC MD needs a periodic cell")
    return atoms


def write_lammps_data(atoms: Atoms, path: str | Path, type_map: list[str] | tuple[str, ...]
                      ) -> str:
    """Write a LAMMPS data file (atom_style atomic, explicit type order) atomically.

    Returns the sha256 of the written file.
    """
    from ase.io import write

    symbols = set(atoms.get_chemical_symbols())
    extra = sorted(symbols - set(type_map))
    if extra:
        raise StructureError(f"structure has {extra}, absent from the model's type map "
                             f"{list(type_map)}; use a model trained on these elements")
    p = write_atomic(path, lambda tmp: write(tmp, sort_atoms(atoms, type_map),
                                             format="lammps-data", specorder=list(type_map),
                                             masses=True, atom_style="atomic", units="metal"))
    return sha256_file(p)
