"""The ordered Li24P4S20Cl4 cell built from Wyckoff data."""

from __future__ import annotations

import numpy as np
import pytest
from ase.io import read
from ase.neighborlist import neighbor_list

from lpsc_lmp.structure import (
    A_EXPERIMENT,
    StructureError,
    build_lpsc,
    check_structure,
    choose_li_sites,
    li_48h_sites,
    read_structure,
    write_lammps_data,
)


def test_composition_and_charge():
    atoms = build_lpsc()
    rep = check_structure(atoms)
    assert rep.counts == {"Li": 24, "P": 4, "S": 20, "Cl": 4}
    assert rep.charge == 0
    assert rep.a_A == pytest.approx(A_EXPERIMENT)
    assert rep.volume_A3 == pytest.approx(A_EXPERIMENT**3)


def test_bond_lengths_are_those_of_argyrodite():
    atoms = build_lpsc()
    i, j, d = neighbor_list("ijd", atoms, 2.3)
    sym = np.array(atoms.get_chemical_symbols())
    ps = d[(sym[i] == "P") & (sym[j] == "S")]
    assert len(ps) == 16 and np.allclose(ps, 2.04, atol=0.01)  # PS4 tetrahedra
    assert check_structure(atoms).min_distance_A == pytest.approx(2.04, abs=0.01)
    # no Li pair of a 48h doublet survives: nearest Li-Li is well above the 1.9 A doublet
    li = atoms[sym == "Li"]
    assert neighbor_list("d", li, 2.2).size == 0


def test_one_li_per_doublet_and_deterministic():
    sites = li_48h_sites()
    chosen = choose_li_sites()
    assert len(chosen) == 24 and len(set(chosen.tolist())) == 24
    np.testing.assert_array_equal(chosen, choose_li_sites())
    d = sites[chosen][:, None] - sites[chosen][None]
    d -= A_EXPERIMENT * np.round(d / A_EXPERIMENT)
    r = np.linalg.norm(d, axis=-1) + np.eye(24) * 99
    assert r.min() > 2.2


def test_lattice_option_and_supercell():
    atoms = build_lpsc(10.1, supercell=2)
    rep = check_structure(atoms)
    assert rep.n_atoms == 416
    assert rep.counts["Li"] == 192
    assert atoms.cell.cellpar()[0] == pytest.approx(20.2)


@pytest.mark.parametrize("a,n", [(-1.0, 1), (9.8, 0)])
def test_bad_parameters(a, n):
    with pytest.raises(StructureError, match="pass"):
        build_lpsc(a, n)


def test_charge_and_distance_checks_refuse():
    atoms = build_lpsc()
    with pytest.raises(StructureError, match="charge"):
        check_structure(atoms[1:])
    squeezed = atoms.copy()
    squeezed.positions[1] = squeezed.positions[0] + [0.5, 0, 0]
    with pytest.raises(StructureError, match="apart"):
        check_structure(squeezed)


def test_lammps_data_type_order(tmp_path):
    atoms = build_lpsc()
    path = tmp_path / "x.data"
    write_lammps_data(atoms, path, ["Li", "P", "S", "Cl"])
    text = path.read_text()
    assert "4 atom types" in text
    back = read(path, format="lammps-data", atom_style="atomic", units="metal")
    types = back.get_array("type")
    assert (types[:24] == 1).all() and (types[24:28] == 2).all() and (types[-4:] == 4).all()
    with pytest.raises(StructureError, match="type map"):
        write_lammps_data(atoms, tmp_path / "y.data", ["Li", "P", "S"])
    assert not (tmp_path / "y.data").exists()


def test_read_structure_errors(tmp_path):
    with pytest.raises(StructureError, match="not found"):
        read_structure(tmp_path / "nope.cif")
    bad = tmp_path / "bad.cif"
    bad.write_text("this is not a structure\n")
    with pytest.raises(StructureError, match="cannot read"):
        read_structure(bad)
    good = tmp_path / "ok.extxyz"
    build_lpsc().write(good)
    assert len(read_structure(good)) == 52
