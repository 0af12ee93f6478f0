"""``lpsc-lmp structure``: build (or read) the LPSC cell, check it, write a LAMMPS data file."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import StructureError
from ..structure import (
    A_EXPERIMENT,
    DEFAULT_TYPE_MAP,
    build_lpsc,
    check_structure,
    read_structure,
    write_lammps_data,
)


@click.command()
@click.option("--a", "lattice", type=float, default=A_EXPERIMENT, show_default=True,
              help="Lattice parameter of the conventional cell (A).")
@click.option("--supercell", type=int, default=1, show_default=True,
              help="n for an n x n x n cell (52 n^3 atoms).")
@click.option("--from", "source", type=click.Path(), default=None,
              help="Any ASE-readable structure instead of the built-in ordered cell.")
@click.option("--type-map", default=",".join(DEFAULT_TYPE_MAP), show_default=True,
              help="Type order of the LAMMPS data file.")
@click.option("-o", "--output", type=click.Path(), default="lpsc.data", show_default=True,
              help="LAMMPS data file to write.")
def structure(lattice: float, supercell: int, source: str | None, type_map: str,
              output: str) -> None:
    """Build (or read) the LPSC cell, check it, write a LAMMPS data file.

    Example: lpsc-lmp structure --a 9.859 --supercell 2 -o lpsc-416.data
    """
    if supercell < 1:
        raise StructureError(f"supercell must be >= 1, got {supercell}; pass e.g. --supercell 2")
    atoms = read_structure(source) if source else build_lpsc(lattice, 1)
    if supercell > 1:
        atoms = atoms.repeat((supercell,) * 3) if source else build_lpsc(lattice, supercell)
    rep = check_structure(atoms)
    sha = write_lammps_data(atoms, Path(output), type_map.split(","))
    click.echo(f"{rep.formula}: {rep.n_atoms} atoms, a = {rep.a_A:.4f} A, "
               f"V = {rep.volume_A3:.2f} A^3, charge {rep.charge:+d}, "
               f"min distance {rep.min_distance_A:.3f} A")
    click.echo(f"wrote {output} (types {type_map}; sha256 {sha[:12]})")
