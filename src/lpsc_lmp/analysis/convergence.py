"""Convergence of D with the number of seeds (the paper's Eq. 2 and Fig. 3c,d).

``delta_N = |D_N - D_all| / D_all`` where ``D_N`` comes from the mean MSD of N seeds.

Because the OLS slope is linear in the data and all seeds share one time grid, the slope of the
mean MSD of a set of seeds equals the mean of their per-seed slopes. Everything here therefore
works on the per-seed D values (any unit, e.g. cm^2/s, from
:attr:`lpsc_lmp.diffusion.DiffusionResult.per_seed_D_cm2s`); ``tests/test_convergence.py``
checks the identity against explicit fits of mean MSDs.

Expectation. For independent seeds with coefficient of variation ``cv = std(D_i)/mean(D_i)``
the relative standard error of ``D_N`` is ``cv / sqrt(N)`` and, for Gaussian errors,
``E[delta_N] = sqrt(2/pi) cv / sqrt(N)``. For random subsets of size N drawn *without
replacement* from n seeds (and compared with the mean of those same n), the finite-population
correction gives ``E[delta_N] = A sqrt(1/N - 1/n)`` with ``A = sqrt(2/pi) cv`` (``cv`` with
``ddof=1``; the variance of a subset mean is ``s^2 (1/N - 1/n)``);
this is the ``1/sqrt(N)`` law fitted here (it reduces to ``A/sqrt(N)`` for N << n).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import AnalysisError

__all__ = [
    "ConvergenceResult",
    "SeedsEstimate",
    "bootstrap_delta_n",
    "convergence_analysis",
    "default_ns",
    "delta_n_first",
    "fit_inverse_sqrt",
    "seeds_needed",
]


def _values(per_seed_D: np.ndarray) -> np.ndarray:
    v = np.asarray(per_seed_D, dtype=np.float64).ravel()
    if v.size < 2:
        raise AnalysisError(f"need at least 2 seeds for a convergence curve, got {v.size}")
    if not np.all(np.isfinite(v)):
        raise AnalysisError("per-seed D contains NaN/inf; drop bad seeds first")
    if np.mean(v) == 0:
        raise AnalysisError("mean D is zero; delta_N is undefined")
    return v


def default_ns(n_seeds: int, n_points: int = 30) -> np.ndarray:
    """Roughly log-spaced subset sizes 1..n_seeds (unique integers, always including both ends)."""
    ns = np.unique(np.round(np.geomspace(1, n_seeds, n_points)).astype(int))
    return ns[(ns >= 1) & (ns <= n_seeds)]


def delta_n_first(
    per_seed_D: np.ndarray, ns: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The paper's curve: ``delta_N`` using the *first* N seeds (in the given order).

    Returns:
        ``(ns, delta)``; ``delta`` is dimensionless.
    """
    v = _values(per_seed_D)
    ns = np.arange(1, v.size + 1) if ns is None else np.asarray(ns, dtype=int)
    d_all = v.mean()
    d_n = np.cumsum(v)[ns - 1] / ns
    return ns, np.abs(d_n - d_all) / abs(d_all)


def bootstrap_delta_n(
    per_seed_D: np.ndarray,
    ns: np.ndarray | None = None,
    n_boot: int = 200,
    rng_seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``delta_N`` averaged over ``n_boot`` random subsets of size N (without replacement).

    Returns:
        ``(ns, mean, lo, hi)`` with ``lo``/``hi`` the 16th/84th percentiles (a 68 % band).
    """
    v = _values(per_seed_D)
    n = v.size
    ns = default_ns(n) if ns is None else np.asarray(ns, dtype=int)
    if np.any(ns < 1) or np.any(ns > n):
        raise AnalysisError(f"subset sizes must lie in 1..{n}")
    rng = np.random.default_rng(rng_seed)
    d_all = v.mean()
    # One random permutation per replicate; the first N entries are a uniform N-subset.
    perms = np.argsort(rng.random((n_boot, n)), axis=1)
    csum = np.cumsum(v[perms], axis=1)
    d_n = csum[:, ns - 1] / ns[None, :]
    delta = np.abs(d_n - d_all) / abs(d_all)
    lo, hi = np.percentile(delta, [16, 84], axis=0)
    return ns, delta.mean(axis=0), lo, hi


def fit_inverse_sqrt(ns: np.ndarray, delta: np.ndarray, n_total: int) -> float:
    """Least-squares amplitude A of ``delta_N = A sqrt(1/N - 1/n_total)`` (see module docstring)."""
    ns = np.asarray(ns, dtype=np.float64)
    x = np.sqrt(np.clip(1.0 / ns - 1.0 / n_total, 0.0, None))
    y = np.asarray(delta, dtype=np.float64)
    den = float(np.dot(x, x))
    return float(np.dot(x, y) / den) if den > 0 else float("nan")


@dataclass(frozen=True)
class SeedsEstimate:
    """Seeds needed for a target relative precision.

    ``n_seeds`` seeds of ``time_ps`` each, ``total_ns`` of trajectory in all; ``cv`` is the
    per-seed coefficient of variation the estimate is based on.
    """

    target_rel_precision: float
    measure: str
    n_seeds: int
    total_ns: float
    cv: float


def seeds_needed(
    target_rel_precision: float,
    per_seed_D: np.ndarray,
    time_ps: float = 70.0,
    measure: str = "stderr",
) -> SeedsEstimate:
    """Number of seeds so that the relative error of D reaches ``target_rel_precision``.

    Args:
        target_rel_precision: e.g. 0.01 for 1 %.
        per_seed_D: per-seed D values (any unit) giving the coefficient of variation.
        time_ps: length of one seed, ps (for the total in ns).
        measure: ``"stderr"``: relative standard error ``cv/sqrt(N)`` (1 sigma);
            ``"delta"``: expected ``delta_N = sqrt(2/pi) cv / sqrt(N)`` (the paper's measure).
    """
    if not target_rel_precision > 0:
        raise AnalysisError("target relative precision must be > 0 (e.g. 0.01 for 1 %)")
    v = _values(per_seed_D)
    cv = float(np.std(v, ddof=1) / abs(np.mean(v)))
    factor = {"stderr": 1.0, "delta": math.sqrt(2.0 / math.pi)}.get(measure)
    if factor is None:
        raise AnalysisError(f"measure must be 'stderr' or 'delta', got {measure!r}")
    n = max(1, math.ceil((factor * cv / target_rel_precision) ** 2))
    return SeedsEstimate(float(target_rel_precision), measure, n, n * time_ps / 1000.0, cv)


@dataclass(frozen=True)
class ConvergenceResult:
    """Convergence curves of D with N (all ``delta`` dimensionless).

    ``delta_first``: paper's curve, first N seeds. ``delta_boot_mean``/``_lo``/``_hi``: mean and
    68 % band over random subsets. ``amplitude_fit``: A fitted to the bootstrap mean;
    ``amplitude_expected``: ``sqrt(2/pi) cv``.
    """

    ns: np.ndarray = field(repr=False)
    delta_first: np.ndarray = field(repr=False)
    delta_boot_mean: np.ndarray = field(repr=False)
    delta_boot_lo: np.ndarray = field(repr=False)
    delta_boot_hi: np.ndarray = field(repr=False)
    n_total: int
    cv: float
    amplitude_fit: float
    amplitude_expected: float

    def expected(self, ns: np.ndarray | None = None) -> np.ndarray:
        """Fitted ``A sqrt(1/N - 1/n)`` at ``ns`` (default: the curve's N)."""
        n_arr = self.ns if ns is None else np.asarray(ns, dtype=np.float64)
        return self.amplitude_fit * np.sqrt(np.clip(1.0 / n_arr - 1.0 / self.n_total, 0, None))

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {
            "ns": self.ns.tolist(),
            "delta_first": self.delta_first.tolist(),
            "delta_boot_mean": self.delta_boot_mean.tolist(),
            "delta_boot_lo": self.delta_boot_lo.tolist(),
            "delta_boot_hi": self.delta_boot_hi.tolist(),
            "n_total": self.n_total,
            "cv": self.cv,
            "amplitude_fit": self.amplitude_fit,
            "amplitude_expected": self.amplitude_expected,
        }


def convergence_analysis(
    per_seed_D: np.ndarray, ns: np.ndarray | None = None, n_boot: int = 200, rng_seed: int = 0
) -> ConvergenceResult:
    """Paper curve, bootstrap curve and fitted ``1/sqrt(N)`` law for per-seed D values."""
    v = _values(per_seed_D)
    n = v.size
    ns = default_ns(n) if ns is None else np.asarray(ns, dtype=int)
    _, first = delta_n_first(v, ns)
    _, mean, lo, hi = bootstrap_delta_n(v, ns, n_boot=n_boot, rng_seed=rng_seed)
    cv = float(np.std(v, ddof=1) / abs(np.mean(v)))
    a_fit = fit_inverse_sqrt(ns, mean, n)
    a_exp = math.sqrt(2.0 / math.pi) * cv
    return ConvergenceResult(ns, first, mean, lo, hi, n, cv, a_fit, a_exp)
