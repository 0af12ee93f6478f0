"""Nernst-Einstein conductivity and the Haven ratio."""

from __future__ import annotations

import numpy as np
import pytest

from lpsc_lmp.analysis import conductivity as cond
from lpsc_lmp.analysis import msd
from lpsc_lmp.analysis.diffusion import fit_ensemble


def test_lpsc_check_value_from_science_md() -> None:
    f = cond.conversion_factor_mScm(24, 958.6, 300.0)
    assert f == pytest.approx(1.55e8, rel=0.005)
    assert cond.nernst_einstein_mScm(1e-8, 24, 958.6, 300.0) == pytest.approx(1.55, rel=0.005)
    # Haven ratio divides; charge enters squared; 1/T
    assert cond.nernst_einstein_mScm(1e-8, 24, 958.6, 300.0, haven_ratio=0.5) == pytest.approx(
        2 * cond.nernst_einstein_mScm(1e-8, 24, 958.6, 300.0))
    assert cond.conversion_factor_mScm(24, 958.6, 300.0, charge=2) == pytest.approx(4 * f)
    assert cond.conversion_factor_mScm(24, 958.6, 600.0) == pytest.approx(f / 2)
    arr = cond.nernst_einstein_mScm(np.array([1e-8, 2e-8]), 24, 958.6, 300.0)
    assert arr.shape == (2,)


def test_units_by_hand() -> None:
    """n q^2 D / kT in SI, converted by hand: 1 Li in 1000 A^3, D = 1e-5 cm^2/s, 1000 K."""
    n_m3 = 1 / (1000e-30)
    d_m2s = 1e-5 * 1e-4
    s_Sm = n_m3 * (1.602176634e-19) ** 2 * d_m2s / (1.380649e-23 * 1000)
    assert cond.nernst_einstein_mScm(1e-5, 1, 1000.0, 1000.0) == pytest.approx(s_Sm * 10, rel=1e-12)


def test_haven_ratio_limits_from_trajectories() -> None:
    rng = np.random.default_rng(0)
    n_li, n_seeds, dt = 8, 200, 1.0
    t = np.arange(71) * dt
    # independent ions: H_R ~ 1
    pos = np.cumsum(rng.normal(scale=0.3, size=(n_seeds, 71, n_li, 3)), axis=1)
    tr = fit_ensemble(t, [msd.single_origin_msd(p) for p in pos], (15, 65))
    co = fit_ensemble(t, [msd.collective_msd_multi_origin(p) for p in pos], (15, 65))
    h, (lo, hi) = cond.haven_ratio_from_seeds(tr.per_seed_D_cm2s, co.per_seed_D_cm2s)
    assert lo < 1.0 < hi and 0.8 < h < 1.25
    # all ions hop together: D_sigma = N D_tracer, H_R = 1/N
    one = np.cumsum(rng.normal(scale=0.3, size=(n_seeds, 71, 1, 3)), axis=1)
    pos = np.repeat(one, n_li, axis=2)
    tr = fit_ensemble(t, [msd.single_origin_msd(p) for p in pos], (15, 65))
    co = fit_ensemble(t, [msd.collective_msd(p) for p in pos], (15, 65))
    h, _ = cond.haven_ratio_from_seeds(tr.per_seed_D_cm2s, co.per_seed_D_cm2s)
    assert h == pytest.approx(1 / n_li, rel=1e-9)


def test_errors() -> None:
    with pytest.raises(ValueError, match="undefined"):
        cond.haven_ratio(1.0, 0.0)
    with pytest.raises(ValueError, match="> 0"):
        cond.conversion_factor_mScm(0, 958.6, 300.0)
    with pytest.raises(ValueError, match="Haven"):
        cond.nernst_einstein_mScm(1e-6, 24, 958.6, 300.0, haven_ratio=0.0)
