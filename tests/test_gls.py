"""Generalised least squares over multi-origin MSD points (lpsc_lmp.analysis.gls)."""

import numpy as np

from lpsc_lmp.analysis.diffusion import ols_fit
from lpsc_lmp.analysis.gls import (
    fit_points,
    gls_line_weights,
    gls_weights_for_frames,
    random_walk_msd_covariance,
)
from lpsc_lmp.analysis.msd import multi_origin_msd


def walks(rng, n_walks, n_steps, n_atoms=8):
    steps = rng.normal(size=(n_walks, n_steps, n_atoms, 3))
    zero = np.zeros((n_walks, 1, n_atoms, 3))
    return np.concatenate([zero, np.cumsum(steps, axis=1)], axis=1)


def test_covariance_matches_sampled_random_walks():
    rng = np.random.default_rng(3)
    n, lags = 30, np.array([2, 5, 11, 20])
    msd = np.array([multi_origin_msd(p)[lags] for p in walks(rng, 4000, n, n_atoms=1)])
    sampled = np.cov(msd.T)
    model = random_walk_msd_covariance(lags, n)
    assert np.allclose(np.diag(sampled), np.diag(model), rtol=0.1)
    assert np.allclose(sampled, model, rtol=0.15, atol=0.05 * model.max())


def test_gls_line_is_exact_on_a_line_and_weights_sum_right():
    t = np.linspace(1.0, 5.0, 12)
    cov = random_walk_msd_covariance(np.arange(10, 22), 40)
    w = gls_line_weights(t, cov)
    icpt, slope = w @ (2.0 + 3.0 * t)
    assert np.isclose(icpt, 2.0) and np.isclose(slope, 3.0)


def test_gls_is_unbiased_and_beats_ols_on_random_walks():
    rng = np.random.default_rng(7)
    n = 200
    lags = np.arange(50, 151)
    idx = fit_points(lags.size)
    assert idx.size <= 40 and idx[0] == 0 and idx[-1] == lags.size - 1
    w = gls_weights_for_frames(lags[idx], 1.0, n)
    gls, ols = [], []
    for p in walks(rng, 300, n):
        m = multi_origin_msd(p)
        gls.append(w[1] @ m[lags[idx]] / 6)
        ols.append(ols_fit(lags.astype(float), m[lags])[0] / 6)
    gls, ols = np.array(gls), np.array(ols)
    d_true = 0.5  # unit steps per dimension: <dx^2> = 1 = 2 D
    assert abs(gls.mean() - d_true) < 3 * gls.std() / np.sqrt(gls.size)
    assert gls.var() < 0.7 * ols.var()
