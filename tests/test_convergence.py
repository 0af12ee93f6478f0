"""Convergence of D with the number of seeds (paper Eq. 2)."""

from __future__ import annotations

import numpy as np
import pytest

from lpsc_lmp.analysis import convergence as cv
from lpsc_lmp.analysis.diffusion import fit_ensemble, ols_fit


def test_delta_first_equals_fit_of_mean_msd_of_first_n_seeds() -> None:
    """delta_N from per-seed D equals the paper's recipe (fit the mean MSD of N seeds)."""
    rng = np.random.default_rng(0)
    t = np.linspace(0, 70, 141)
    slopes = rng.lognormal(0, 0.4, size=25)
    msd = slopes[:, None] * t[None, :] + rng.normal(scale=2.0, size=(25, t.size))
    res = fit_ensemble(t, msd, (15, 65))
    ns, delta = cv.delta_n_first(res.per_seed_D_cm2s)
    mask = (t >= 15) & (t <= 65)
    d_all, _ = ols_fit(t[mask], msd.mean(axis=0)[mask])
    for n in (1, 2, 7, 25):
        d_n, _ = ols_fit(t[mask], msd[:n].mean(axis=0)[mask])
        assert delta[n - 1] == pytest.approx(abs(d_n - d_all) / d_all, rel=1e-9, abs=1e-12)
    assert delta[-1] == pytest.approx(0.0, abs=1e-12)
    assert ns.tolist() == list(range(1, 26))


def test_bootstrap_curve_follows_inverse_sqrt_law() -> None:
    rng = np.random.default_rng(1)
    v = rng.normal(1.0, 0.5, size=300)  # cv = 0.5 like a single LPSC trajectory
    res = cv.convergence_analysis(v, n_boot=400, rng_seed=2)
    assert res.amplitude_fit == pytest.approx(res.amplitude_expected, rel=0.1)
    assert res.amplitude_expected == pytest.approx(np.sqrt(2 / np.pi) * res.cv)
    assert res.delta_boot_mean[-1] == pytest.approx(0.0, abs=1e-12)  # N = n: the full set
    assert np.all(res.delta_boot_lo <= res.delta_boot_mean + 1e-15)
    assert np.all(res.delta_boot_mean <= res.delta_boot_hi + 1e-15)
    # N = 1: a single trajectory is off by ~ sqrt(2/pi) * cv ~ 40 % on average
    assert 0.3 < res.delta_boot_mean[0] < 0.5
    d = res.to_dict()
    assert len(d["ns"]) == len(d["delta_first"]) == len(d["delta_boot_mean"])


def test_seeds_needed() -> None:
    v = np.array([0.5, 1.5] * 50)  # mean 1, std(ddof=1) ~ 0.5025
    est = cv.seeds_needed(0.01, v, time_ps=70.0)
    expected = int(np.ceil((np.std(v, ddof=1) / 0.01) ** 2))
    assert est.n_seeds == expected
    assert est.total_ns == pytest.approx(expected * 0.07)
    est_d = cv.seeds_needed(0.01, v, measure="delta")
    assert est_d.n_seeds == pytest.approx(expected * 2 / np.pi, rel=1e-3)
    with pytest.raises(ValueError, match="> 0"):
        cv.seeds_needed(0.0, v)
    with pytest.raises(ValueError, match="measure"):
        cv.seeds_needed(0.01, v, measure="x")


def test_input_errors() -> None:
    with pytest.raises(ValueError, match="at least 2 seeds"):
        cv.delta_n_first([1.0])
    with pytest.raises(ValueError, match="NaN"):
        cv.convergence_analysis([1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="subset sizes"):
        cv.bootstrap_delta_n([1.0, 2.0], ns=np.array([3]))


def test_default_ns() -> None:
    ns = cv.default_ns(300)
    assert ns[0] == 1 and ns[-1] == 300 and np.all(np.diff(ns) > 0)
