"""NEB barriers of the Li jumps (lpsc_lmp.study.barriers)."""

from __future__ import annotations

import numpy as np
import pytest

from lpsc_lmp.structure import A_EXPERIMENT, build_lpsc
from lpsc_lmp.study.barriers import jump_targets


def _mic(d: np.ndarray) -> np.ndarray:
    return d - A_EXPERIMENT * np.round(d / A_EXPERIMENT)


def test_jump_targets_are_the_three_argyrodite_jumps():
    atoms = build_lpsc(A_EXPERIMENT)
    li = atoms.positions[0]
    targets = jump_targets()
    dist = {j: float(np.linalg.norm(t - li)) for j, (t, _) in targets.items()}
    assert dist["doublet"] < dist["intracage"] < dist["intercage"] < 3.5
    assert targets["doublet"][1] is None  # the partner site of its own doublet is empty
    for jump in ("intracage", "intercage"):
        target, vac = targets[jump]
        assert vac is not None and vac != 0 and atoms[vac].symbol == "Li"
        # the removed Li holds the other site of the target's doublet (a 48h-48h pair)
        assert np.linalg.norm(_mic(atoms.positions[vac] - target)) == pytest.approx(
            dist["doublet"], abs=0.05)
    # no atom already sits on a target site
    for target, _ in targets.values():
        assert np.linalg.norm(_mic(atoms.positions - target), axis=1).min() > 1.0


def test_intercage_barrier_of_the_default_model():
    """A converged band between relaxed end states, with a positive barrier."""
    from lpsc_lmp.study.barriers import barriers

    out = barriers("dp-7net", ("intercage",))["jumps"]["intercage"]
    assert out["ends_relaxed"] and out["converged"] and out["vacancy"]
    assert 0.02 < out["barrier_eV"] < 1.0
    assert out["profile_eV"][0] == 0.0 and max(out["profile_eV"]) == out["barrier_eV"]
