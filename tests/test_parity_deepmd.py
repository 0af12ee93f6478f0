"""The LAMMPS route (pair_style deepmd) equals DeePMD-kit's own ASE calculator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from lpsc_lmp.md.singlepoint import lammps_singlepoint
from lpsc_lmp.models.registry import load_card

DATA = Path(__file__).resolve().parents[1] / "data" / "lpsc-7net" / "test.extxyz"


@pytest.fixture(scope="module")
def card():
    return load_card("dp-7net")


@pytest.fixture(scope="module")
def configs():
    frames = read(DATA, index="::15")
    out = []
    for at in frames:  # LAMMPS rotates non-orthorhombic cells; use the orthorhombic part
        at = at.copy()
        at.set_cell(np.diag(np.diag(at.cell.array)), scale_atoms=False)
        at.wrap()
        out.append(at)
    return out


def test_energy_forces_stress_match_ase(card, configs):
    from deepmd.calculator import DP

    calc = DP(str(card.require_deploy_file()))
    for at in configs:
        lmp = lammps_singlepoint(at, card)
        at.calc = calc
        assert lmp["energy"] == pytest.approx(at.get_potential_energy(), abs=1e-6)
        np.testing.assert_allclose(lmp["forces"], at.get_forces(), atol=1e-6)
        np.testing.assert_allclose(lmp["stress"], at.get_stress(voigt=True), atol=1e-6)
