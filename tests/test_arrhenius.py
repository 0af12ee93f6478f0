"""Weighted Arrhenius fit with full covariance."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import curve_fit

from lpsc_lmp.analysis.arrhenius import KB_EV, fit_arrhenius

T = np.array([700.0, 800.0, 900.0, 1000.0, 1100.0, 1200.0])
EA, D0 = 0.30, 1.0e-3  # eV, cm^2/s


def _d(t):
    return D0 * np.exp(-EA / (KB_EV * t))


def test_exact_data_gives_exact_parameters() -> None:
    fit = fit_arrhenius(T, _d(T), 0.02 * _d(T))
    assert fit.Ea_eV == pytest.approx(EA, abs=1e-12)
    assert fit.D0 == pytest.approx(D0, rel=1e-10)
    assert fit.chi2_red == pytest.approx(0.0, abs=1e-12)
    assert fit.dof == 4 and fit.cov.shape == (2, 2)


def test_recovers_Ea_and_errors_are_calibrated() -> None:
    """Many noisy data sets (5 % errors): Ea unbiased, its pull has unit width."""
    rng = np.random.default_rng(0)
    pulls, eas = [], []
    for _ in range(500):
        sig = 0.05 * _d(T)
        d = _d(T) * np.exp(rng.normal(scale=0.05, size=T.size))
        fit = fit_arrhenius(T, d, sig)
        pulls.append((fit.Ea_eV - EA) / fit.Ea_err_eV)
        eas.append(fit.Ea_eV)
    assert abs(np.mean(eas) - EA) < 0.005
    assert 0.9 < np.std(pulls) < 1.1
    assert 0.93 < np.mean(np.abs(pulls) < 1.96) < 0.97


def test_covariance_matches_curve_fit_absolute_sigma() -> None:
    rng = np.random.default_rng(1)
    sig = 0.05 * _d(T)
    d = _d(T) * np.exp(rng.normal(scale=0.05, size=T.size))
    fit = fit_arrhenius(T, d, sig)

    def model(t, ln_d0, ea):
        return ln_d0 - ea / (KB_EV * t)

    p, c = curve_fit(model, T, np.log(d), p0=[-7, 0.3], sigma=sig / d, absolute_sigma=True)
    np.testing.assert_allclose([fit.ln_D0, fit.Ea_eV], p, rtol=1e-7)
    np.testing.assert_allclose(fit.cov, c, rtol=1e-5)
    scaled = fit_arrhenius(T, d, sig, scale_by_chi2=True)
    p2, c2 = curve_fit(model, T, np.log(d), p0=[-7, 0.3], sigma=sig / d, absolute_sigma=False)
    np.testing.assert_allclose(scaled.cov, c2, rtol=1e-5)


def test_prediction_interval_uses_full_covariance() -> None:
    rng = np.random.default_rng(2)
    sig = 0.05 * _d(T)
    d = _d(T) * np.exp(rng.normal(scale=0.05, size=T.size))
    fit = fit_arrhenius(T, d, sig)
    # Monte Carlo over the parameter distribution reproduces the delta-method sigma of ln D
    draws = rng.multivariate_normal([fit.ln_D0, fit.Ea_eV], fit.cov, size=200000)
    ln300 = draws[:, 0] - draws[:, 1] / (KB_EV * 300.0)
    y, s = fit.ln_D(300.0)
    assert s == pytest.approx(np.std(ln300), rel=0.01)
    # ignoring the correlation would be badly wrong (strong anti-correlation of ln D0 and Ea)
    naive = np.sqrt(fit.cov[0, 0] + fit.cov[1, 1] / (KB_EV * 300.0) ** 2)
    assert naive > 1.5 * s
    dd, lo, hi = fit.predict(300.0)
    assert lo < dd < hi
    _, lo9, hi9 = fit.predict(900.0)
    assert (hi / lo) > (hi9 / lo9)  # extrapolation widens the interval
    assert dd == pytest.approx(_d(300.0), rel=0.6)


def test_two_and_one_points() -> None:
    t2 = np.array([700.0, 1000.0])
    fit = fit_arrhenius(t2, _d(t2), 0.05 * _d(t2))
    assert fit.Ea_eV == pytest.approx(EA) and np.isfinite(fit.Ea_err_eV)
    unweighted = fit_arrhenius(t2, _d(t2))
    assert np.isnan(unweighted.Ea_err_eV)
    assert any("no error estimate" in w for w in unweighted.warnings)
    with pytest.raises(ValueError, match=">= 3"):
        fit_arrhenius(t2, _d(t2), 0.05 * _d(t2), scale_by_chi2=True)
    with pytest.raises(ValueError, match=">= 2 temperatures"):
        fit_arrhenius([700.0], [1e-5])


def test_unweighted_three_points_has_error() -> None:
    t3 = np.array([700.0, 900.0, 1100.0])
    d = _d(t3) * np.array([1.05, 0.97, 1.01])
    fit = fit_arrhenius(t3, d)
    assert np.isfinite(fit.Ea_err_eV) and fit.Ea_err_eV > 0


@pytest.mark.parametrize(
    ("t", "d", "s", "match"),
    [([700, 800], [1e-5, -1e-5], None, "> 0"), ([700, 700], [1e-5, 2e-5], None, "distinct"),
     ([700, 800], [1e-5, 2e-5], [0.0, 1e-6], "sigma_D"), ([700, 800], [1e-5], None, "length")],
)
def test_bad_inputs(t, d, s, match) -> None:
    with pytest.raises(ValueError, match=match):
        fit_arrhenius(t, d, s)
