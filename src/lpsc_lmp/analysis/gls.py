"""Generalised least squares over the correlated points of a multi-origin MSD.

The points of a multi-origin MSD share most of their displacements: neighbouring lags are
almost the same number, and long lags rest on few independent origins. An ordinary
least-squares line weighs every point alike and so over-counts them; generalised least squares
(GLS) weighs them by the inverse of their covariance and extracts more of the information the
trajectory holds (Bullerjahn, von Buelow & Hummer, J. Chem. Phys. 153, 024116 (2020);
McCluskey, Coles & Morgan, kinisi, J. Chem. Theory Comput. 2025).

The covariance used here is the exact one of a Gaussian random walk sampled at the MSD's frames
(Isserlis' theorem: for jointly Gaussian displacements ``Cov(|d1|^2, |d2|^2) = 2 dim
Cov(d1_x, d2_x)^2``, and two displacements of a walk covary by the number of steps they
share). Only its shape matters: its scale (D^2, the number of ions) cancels in the weights.
With a fixed shape the estimator is linear in the MSD, so it stays unbiased whatever the true
dynamics (a line ``c + 6 D t`` over the window is all it assumes) and D of an ensemble is the
mean of the per-seed D, with errors from the seeds as independent replicas; the covariance
model only decides how efficient it is, which bench/bench_precision.py measures on the
project's own trajectories. It is not an ``--estimator``: where the MSD still bends over the
lag window, GLS leans on the short lags and comes out high (docs/decisions.md).
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from ..errors import AnalysisError

#: Most MSD points a GLS fit uses (evenly spread over the window's frames): adjacent lags carry
#: almost the same information, and a smaller covariance matrix is better conditioned.
MAX_POINTS = 40


def fit_points(n_in: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices (into the ``n_in`` points of a window) of the points a GLS fit uses."""
    if n_in <= max_points:
        return np.arange(n_in)
    return np.unique(np.round(np.linspace(0, n_in - 1, max_points)).astype(int))


def random_walk_msd_covariance(lags: np.ndarray, n_steps: int, dim: int = 3) -> np.ndarray:
    """Covariance of the multi-origin MSD of one random walk at integer ``lags`` (in frames).

    The walk has ``n_steps`` unit-variance Gaussian steps per dimension (``n_steps + 1``
    frames); the MSD at lag m averages ``|x(k + m) - x(k)|^2`` over the ``n_steps - m + 1``
    origins k. Returned in units of the step variance squared, ``(len(lags), len(lags))``.
    """
    m = np.asarray(lags, dtype=np.int64)
    if m.ndim != 1 or np.any(m < 1) or np.any(m > n_steps):
        raise AnalysisError(f"lags must be integers in 1..{n_steps} frames")
    cov = np.empty((m.size, m.size))
    for i, a in enumerate(m):
        for j in range(i, m.size):
            b = m[j]
            delta = np.arange(-(n_steps - a), n_steps - b + 1)  # l - k of the two origins
            count = np.minimum(n_steps - a, n_steps - b - delta) - np.maximum(0, -delta) + 1
            shared = np.minimum(a, delta + b) - np.maximum(0, delta)
            ok = (count > 0) & (shared > 0)
            s = float(np.sum(count[ok] * shared[ok].astype(np.float64) ** 2))
            cov[i, j] = cov[j, i] = 2.0 * dim * s / ((n_steps - a + 1) * (n_steps - b + 1))
    return cov


def gls_line_weights(t: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """The ``(2, n)`` matrix W with ``(intercept, slope) = W @ y`` for the GLS line through
    points ``y`` at abscissae ``t`` with covariance ``cov`` (any scale)."""
    t = np.asarray(t, dtype=np.float64)
    x = np.column_stack([np.ones_like(t), t])
    c = np.asarray(cov, dtype=np.float64)
    c = c / np.mean(np.diag(c))
    try:
        cho = linalg.cho_factor(c + 1e-12 * np.eye(c.shape[0]), lower=True)
    except linalg.LinAlgError:
        raise AnalysisError("the MSD covariance is not positive definite; use --estimator "
                            "multi-origin") from None
    cix = linalg.cho_solve(cho, x)
    return np.linalg.solve(x.T @ cix, cix.T)


def gls_weights_for_frames(frame_lags: np.ndarray, dt_ps: float, n_steps: int,
                           dim: int = 3) -> np.ndarray:
    """:func:`gls_line_weights` for MSD points at integer frame lags of a trajectory of
    ``n_steps`` frame intervals of ``dt_ps`` each."""
    cov = random_walk_msd_covariance(frame_lags, n_steps, dim)
    return gls_line_weights(np.asarray(frame_lags) * dt_ps, cov)
