"""Diffusion coefficients from an ensemble of independent MSD curves, with honest errors.

Units: time in ps, MSD in Angstrom^2, D in Angstrom^2/ps (``*_A2ps``) or cm^2/s (``*_cm2s``);
1 A^2/ps = 1e-4 cm^2/s (:data:`A2PS_TO_CM2S`).

The estimator is the paper's (arXiv:2512.11650): average the MSD over the seeds, fit a straight
line (ordinary least squares, slope and intercept) over the window (15-65 ps of 70 ps) and divide
the slope by ``2 d``.

Errors. The OLS standard error of that slope is far too small (MSD points along one curve are
strongly correlated), so it is not used. The seeds are independent replicas, and OLS is linear in
the data, so the slope of the seed-mean MSD *equals* the mean of the per-seed slopes (same time
grid). Hence the standard error of D is ``std(D_i, ddof=1) / sqrt(n)`` over per-seed values
``D_i``, and the 95 % interval is Student-t, ``D +- t(0.975, n - 1) x stderr``: calibrated for
a handful of seeds, where a percentile bootstrap over seeds (also reported) is too narrow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import AnalysisError
from ..protocol import default_window

__all__ = [
    "A2PS_TO_CM2S",
    "ALPHA_TOLERANCE",
    "MAX_REL_STDERR",
    "MIN_WINDOW_POINTS",
    "DiffusionResult",
    "WindowDiagnostic",
    "default_window",
    "fit_ensemble",
    "ols_fit",
    "per_seed_slopes",
    "validate_window",
    "window_diagnostic",
    "slope_drop",
    "student_t_ci",
    "MAX_SLOPE_DROP",
    "still_bends",
]

#: 1 A^2/ps in cm^2/s.
A2PS_TO_CM2S = 1.0e-4
#: Fewest MSD samples accepted inside a fit window.
MIN_WINDOW_POINTS = 5
#: Warn when the mean local exponent in the window differs from 1 by more than this.
ALPHA_TOLERANCE = 0.25
#: Warn when the relative standard error of D exceeds this.
MAX_REL_STDERR = 0.2
#: Warn when the MSD slope of the second half of the window is lower than that of the first half
#: by more than this fraction of D (and by more than twice its error over the seeds): the MSD
#: still bends (local motion in the Li cages not yet averaged out), so D is biased high.
MAX_SLOPE_DROP = 0.1


def validate_window(
    t_ps: np.ndarray, window_ps: tuple[float, float], min_points: int = MIN_WINDOW_POINTS
) -> np.ndarray:
    """Check a fit window against the time axis and return the boolean mask of points in it.

    Raises:
        ValueError: one-line message naming the fix (start >= end, window outside the data,
            too few points).
    """
    t = np.asarray(t_ps, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise AnalysisError(f"time axis must be a non-empty 1-D array, got shape {t.shape}")
    try:
        t0, t1 = (float(w) for w in window_ps)
    except (TypeError, ValueError) as exc:
        raise AnalysisError(
            f"fit window must be two numbers (start, end) in ps, got {window_ps!r}"
        ) from exc
    if not (np.isfinite(t0) and np.isfinite(t1)) or t0 >= t1:
        raise AnalysisError(f"fit window start {t0} ps must be < end {t1} ps; swap or fix the "
                            "window")
    if t0 < 0:
        raise AnalysisError(f"fit window start {t0} ps is negative; start at >= 0 ps")
    tmax = float(np.max(t))
    eps = 1e-9 * max(1.0, abs(tmax))
    if t1 > tmax + eps:
        raise AnalysisError(
            f"fit window end {t1:g} ps is beyond the data (last MSD sample at {tmax:g} ps); "
            f"use an end <= {tmax:g} ps or run longer trajectories"
        )
    mask = (t >= t0 - eps) & (t <= t1 + eps)
    n = int(np.count_nonzero(mask))
    if n < min_points:
        raise AnalysisError(
            f"fit window {t0:g}-{t1:g} ps holds {n} MSD samples (< {min_points}); "
            "widen the window or write the MSD more often"
        )
    return mask


def ols_fit(t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ordinary least-squares line ``y = a + b t`` along the last axis.

    Args:
        t: ``(n_t,)`` abscissa.
        y: ``(..., n_t)`` ordinates (one fit per leading index).

    Returns:
        ``(slope, intercept)``, each of shape ``y.shape[:-1]``.
    """
    t = np.asarray(t, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    tc = t - t.mean()
    sxx = float(np.dot(tc, tc))
    if sxx <= 0:
        raise AnalysisError("cannot fit a line to a single time value; widen the window")
    ym = y.mean(axis=-1)
    slope = (y @ tc) / sxx
    intercept = ym - slope * t.mean()
    return slope, intercept


def per_seed_slopes(
    t_ps: np.ndarray, msd_per_seed: np.ndarray, window_ps: tuple[float, float]
) -> np.ndarray:
    """OLS slope of each seed's MSD over the window, ``(n_seeds,)`` in A^2/ps."""
    mask = validate_window(t_ps, window_ps)
    msd = np.atleast_2d(np.asarray(msd_per_seed, dtype=np.float64))
    slope, _ = ols_fit(np.asarray(t_ps, dtype=np.float64)[mask], msd[:, mask])
    return slope


@dataclass(frozen=True)
class WindowDiagnostic:
    """Quality of the fit window on the seed-mean MSD.

    ``alpha_window`` is the log-log slope of the mean MSD over the window (the mean local
    exponent there); ``rel_residual`` is the rms deviation of the mean MSD from its straight-line
    fit relative to the mean MSD in the window; ``rel_stderr`` is ``stderr(D) / D``.
    """

    alpha_window: float
    rel_residual: float
    rel_stderr: float
    warnings: tuple[str, ...] = ()


def window_diagnostic(
    t_ps: np.ndarray,
    msd_mean: np.ndarray,
    window_ps: tuple[float, float],
    rel_stderr: float = float("nan"),
) -> WindowDiagnostic:
    """Diagnose the fit window of a seed-mean MSD curve (A^2 vs ps); see :class:`WindowDiagnostic`.

    Warnings (strings) are produced when ``|alpha_window - 1| > ALPHA_TOLERANCE`` (ballistic or
    caged: move/widen the window or run longer) and when ``rel_stderr > MAX_REL_STDERR``
    (too few seeds).
    """
    mask = validate_window(t_ps, window_ps)
    t = np.asarray(t_ps, dtype=np.float64)[mask]
    y = np.asarray(msd_mean, dtype=np.float64)[mask]
    warn: list[str] = []
    pos = (t > 0) & (y > 0)
    if np.count_nonzero(pos) >= 2:
        alpha, _ = ols_fit(np.log(t[pos]), np.log(y[pos]))
        alpha = float(alpha)
    else:
        alpha = float("nan")
    slope, icpt = ols_fit(t, y)
    resid = y - (icpt + slope * t)
    scale = float(np.mean(np.abs(y))) or 1.0
    rel_res = float(np.sqrt(np.mean(resid**2)) / scale)
    if not np.isfinite(alpha):
        warn.append("mean MSD is not positive in the fit window; no diffusion detected")
    elif alpha > 1 + ALPHA_TOLERANCE:
        warn.append(
            f"MSD grows super-linearly in the window (alpha = {alpha:.2f} > 1): "
            "ballistic regime, start the window later"
        )
    elif alpha < 1 - ALPHA_TOLERANCE:
        warn.append(
            f"MSD grows sub-linearly in the window (alpha = {alpha:.2f} < 1): caged or "
            "too few hops, D is unreliable; run longer or at higher T"
        )
    if np.isfinite(rel_stderr) and rel_stderr > MAX_REL_STDERR:
        warn.append(
            f"relative standard error of D is {rel_stderr:.0%} (> {MAX_REL_STDERR:.0%}); "
            "add seeds"
        )
    if float(slope) <= 0:
        warn.append("fitted MSD slope is not positive; D is not meaningful")
    return WindowDiagnostic(alpha, rel_res, float(rel_stderr), tuple(warn))


@dataclass(frozen=True)
class DiffusionResult:
    """Ensemble estimate of a diffusion coefficient.

    Attributes:
        D_A2ps: paper estimator, OLS slope of the seed-mean MSD over the window / (2 dim), A^2/ps.
        D_cm2s: the same in cm^2/s.
        stderr_cm2s: ``std(per-seed D, ddof=1) / sqrt(n_seeds)``, cm^2/s (nan for one seed).
        ci95_cm2s: 95 % interval, Student-t over seeds: D +- t(0.975, n - 1) x stderr, cm^2/s
            (calibrated even for a handful of seeds; bench/results/precision.md).
        ci95_boot_cm2s: percentile-bootstrap 95 % interval over seeds, cm^2/s (too narrow for
            fewer than about ten seeds).
        per_seed_D_cm2s: D of each seed from its own MSD over the window, cm^2/s.
        n_seeds: number of seeds used.
        window_ps: fit window (start, end), ps.
        dim: dimensionality used in ``2 d``.
        intercept_A2: intercept of the fit of the mean MSD, A^2.
        alpha_window: log-log slope of the mean MSD in the window (1 = diffusive).
        rel_stderr: ``stderr_cm2s / D_cm2s``.
        slope_drop: (slope of the first half of the window - slope of the second half) / slope
            of the whole, mean over seeds (0 on a straight MSD; > 0 while it still bends).
        slope_drop_err: its standard error over seeds (paired per seed).
        warnings: human-readable problems (window, noise, few seeds).
    """

    D_A2ps: float
    D_cm2s: float
    stderr_cm2s: float
    ci95_cm2s: tuple[float, float]
    per_seed_D_cm2s: np.ndarray = field(repr=False)
    n_seeds: int
    window_ps: tuple[float, float]
    dim: int = 3
    intercept_A2: float = float("nan")
    alpha_window: float = float("nan")
    rel_stderr: float = float("nan")
    slope_drop: float = float("nan")
    slope_drop_err: float = float("nan")
    ci95_boot_cm2s: tuple[float, float] = (float("nan"), float("nan"))
    warnings: tuple[str, ...] = ()

    @property
    def diffusive(self) -> bool:
        """True when the fit window is diffusive: the log-log slope of the mean MSD is within
        ``ALPHA_TOLERANCE`` of 1 and the MSD no longer bends (:func:`still_bends`)."""
        return (bool(abs(self.alpha_window - 1) <= ALPHA_TOLERANCE)
                and not still_bends(self.slope_drop, self.slope_drop_err))

    @property
    def stderr_A2ps(self) -> float:
        """Standard error in A^2/ps."""
        return self.stderr_cm2s / A2PS_TO_CM2S

    def to_dict(self) -> dict:
        """JSON-ready dictionary (arrays as lists, units in the key names)."""
        d = asdict(self)
        d["per_seed_D_cm2s"] = [float(x) for x in self.per_seed_D_cm2s]
        d["ci95_cm2s"] = [float(x) for x in self.ci95_cm2s]
        d["ci95_boot_cm2s"] = [float(x) for x in self.ci95_boot_cm2s]
        d["window_ps"] = [float(x) for x in self.window_ps]
        d["warnings"] = list(self.warnings)
        d["diffusive"] = self.diffusive
        return d


def bootstrap_mean_ci(
    values: np.ndarray, n_boot: int = 1000, rng_seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values`` (resampling with replacement)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2 or n_boot < 1:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(rng_seed)
    idx = rng.integers(0, v.size, size=(n_boot, v.size))
    means = v[idx].mean(axis=1)
    lo, hi = np.percentile(means, [50 * (1 - level), 50 * (1 + level)])
    return (float(lo), float(hi))


def still_bends(drop: float, drop_err: float) -> bool:
    """True when the MSD's slope falls across the window by more than ``MAX_SLOPE_DROP`` and
    by more than twice its error (see :func:`slope_drop`): the window starts too early."""
    return bool(np.isfinite(drop) and drop > MAX_SLOPE_DROP and drop > 2 * drop_err)


def slope_drop(t_ps: np.ndarray, msd_per_seed: np.ndarray, window_ps: tuple[float, float],
               slopes: np.ndarray) -> tuple[float, float]:
    """How much the MSD still bends in the window: per seed, (slope over the first half -
    slope over the second half) / the ensemble's slope over the whole window; returns the mean
    over seeds and its standard error (nan when a half holds too few samples or one seed)."""
    t0, t1 = window_ps
    mid = 0.5 * (t0 + t1)
    try:
        first = per_seed_slopes(t_ps, msd_per_seed, (t0, mid))
        second = per_seed_slopes(t_ps, msd_per_seed, (mid, t1))
    except AnalysisError:
        return float("nan"), float("nan")
    scale = float(np.mean(slopes))
    if msd_per_seed.shape[0] < 2 or scale <= 0:
        return float("nan"), float("nan")
    r = (first - second) / scale
    return float(r.mean()), float(r.std(ddof=1) / np.sqrt(r.size))


def student_t_ci(mean: float, stderr: float, n: int, level: float = 0.95
                 ) -> tuple[float, float]:
    """``mean +- t(1/2 + level/2, n - 1) x stderr``: the interval of a mean of ``n`` independent
    replicas (nan for fewer than two)."""
    if n < 2 or not np.isfinite(stderr):
        return (float("nan"), float("nan"))
    from scipy import stats

    q = float(stats.t.ppf(0.5 + level / 2, n - 1))
    return (mean - q * stderr, mean + q * stderr)


def fit_ensemble(
    t_ps: np.ndarray,
    msd_per_seed: np.ndarray,
    window_ps: tuple[float, float],
    dim: int = 3,
    n_boot: int = 1000,
    rng_seed: int = 0,
) -> DiffusionResult:
    """Paper estimator of D from an ensemble of MSD curves, with seed-based errors.

    Args:
        t_ps: ``(n_t,)`` time of each MSD sample, ps (shared by all seeds).
        msd_per_seed: ``(n_seeds, n_t)`` MSD of each independent seed, A^2.
        window_ps: fit window (start, end), ps; see :func:`default_window`.
        dim: dimensionality, D = slope / (2 dim).
        n_boot: bootstrap resamples over seeds for the 95 % interval.
        rng_seed: seed of the bootstrap generator (results are reproducible).

    Returns:
        :class:`DiffusionResult`.
    """
    t = np.asarray(t_ps, dtype=np.float64)
    msd = np.asarray(msd_per_seed, dtype=np.float64)
    if msd.ndim == 1:
        msd = msd[None, :]
    if msd.ndim != 2 or msd.shape[1] != t.size:
        raise AnalysisError(
            f"msd_per_seed must have shape (n_seeds, {t.size}) to match t_ps, got {msd.shape}"
        )
    if msd.shape[0] == 0:
        raise AnalysisError("no seeds to fit; run or finish some seeds first")
    if dim not in (1, 2, 3):
        raise AnalysisError(f"dim must be 1, 2 or 3, got {dim}")
    mask = validate_window(t, window_ps)
    if not np.all(np.isfinite(msd[:, mask])):
        raise AnalysisError("MSD contains NaN/inf inside the fit window; drop or re-run bad seeds")
    w = (float(window_ps[0]), float(window_ps[1]))
    n = msd.shape[0]
    mean_msd = msd.mean(axis=0)
    slope, icpt = ols_fit(t[mask], mean_msd[mask])
    d_a2ps = float(slope) / (2 * dim)
    per_seed = per_seed_slopes(t, msd, w) / (2 * dim) * A2PS_TO_CM2S
    d_cm2s = d_a2ps * A2PS_TO_CM2S
    if n >= 2:
        stderr = float(np.std(per_seed, ddof=1) / np.sqrt(n))
    else:
        stderr = float("nan")
    ci = bootstrap_mean_ci(per_seed, n_boot=n_boot, rng_seed=rng_seed)
    rel = stderr / abs(d_cm2s) if d_cm2s != 0 else float("inf")
    diag = window_diagnostic(t, mean_msd, w, rel_stderr=rel)
    warn = list(diag.warnings)
    drop, drop_err = slope_drop(t, msd, w, per_seed / A2PS_TO_CM2S * (2 * dim))
    caged = diag.alpha_window < 1 - ALPHA_TOLERANCE  # already warned about, more strongly
    if still_bends(drop, drop_err) and not caged:
        warn.append(f"the MSD still bends in the window (slope of its second half "
                    f"{drop:.0%} +- {drop_err:.0%} lower than the first): D is biased high; "
                    "start the window later or run longer trajectories")
    if n < 2:
        warn.append("only one seed: no error estimate; run more seeds")
    elif n < 10:
        warn.append(f"only {n} seeds: the error estimate itself is uncertain; run >= 10 seeds")
    return DiffusionResult(
        D_A2ps=d_a2ps,
        D_cm2s=d_cm2s,
        stderr_cm2s=stderr,
        ci95_cm2s=student_t_ci(d_cm2s, stderr, n),
        ci95_boot_cm2s=ci,
        per_seed_D_cm2s=per_seed,
        n_seeds=n,
        window_ps=w,
        dim=dim,
        intercept_A2=float(icpt),
        alpha_window=diag.alpha_window,
        rel_stderr=float(rel),
        slope_drop=drop,
        slope_drop_err=drop_err,
        warnings=tuple(warn),
    )
