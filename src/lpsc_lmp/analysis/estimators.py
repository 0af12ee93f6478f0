"""Estimators of D from an ensemble, side by side; every result says which one made it.

- ``paper``: the estimator of arXiv:2512.11650. The Li MSD from t = 0 of each trajectory
  (LAMMPS ``compute msd``), averaged over the seeds, a straight line fitted over 15-65 ps of a
  70 ps run (the same fractions of other lengths), D = slope / 6. One time origin per
  trajectory.
- ``multi-origin``: the same seeds, but each seed's tracer MSD averaged over every time origin
  of its trajectory (:func:`lpsc_lmp.analysis.msd.multi_origin_msd`, FFT) from the unwrapped Li
  positions with the framework's drift removed. Origins start after ``t_eq`` ps (the seeds start
  from the crystal with no equilibration; :data:`T_EQ_FRACTION` of the run is left out), and
  the line is fitted over lags :data:`MULTI_ORIGIN_WINDOW` of the remaining length (longer lags
  have few origins and add noise, not information). Same data, several times less scatter
  between seeds (bench/results/precision.md).

Both are linear in the per-seed MSD, so D equals the mean of the per-seed D, and the error bar
comes from the seeds as independent replicas (:func:`lpsc_lmp.analysis.diffusion.fit_ensemble`):
correlations along a trajectory never enter it. Units: ps, A^2, D in cm^2/s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import AnalysisError
from . import msd as msdmod
from .diffusion import MIN_WINDOW_POINTS, DiffusionResult, fit_ensemble
from .ensemble_data import EnsembleData

ESTIMATORS = ("paper", "multi-origin")
#: What each estimator is, for every output that names it.
DESCRIPTION = {
    "paper": "paper's estimator: seed-mean single-origin MSD from t = 0 (LAMMPS compute msd), "
             "OLS over the fit window / 6, errors from the seeds",
    "multi-origin": "multi-origin tracer MSD of each seed (drift-corrected positions, origins "
                    "after the equilibration time), OLS over the lag window / 6, errors from the "
                    "seeds",
}
#: Fraction of each run left out before the first time origin (equilibration).
T_EQ_FRACTION = 0.1
#: Fit window of the multi-origin MSD, as fractions of the run length after equilibration.
MULTI_ORIGIN_WINDOW = (0.25, 0.75)


def check_estimator(name: str) -> str:
    if name not in ESTIMATORS:
        raise AnalysisError(f"estimator {name!r} unknown; use one of {', '.join(ESTIMATORS)}")
    return name


@dataclass(frozen=True)
class Estimate:
    """D of an ensemble by one estimator, with the per-seed curves it was fitted to."""

    estimator: str
    result: DiffusionResult
    t_ps: np.ndarray = field(repr=False)   # time (paper) or lag (multi-origin) axis, ps
    msd: np.ndarray = field(repr=False)    # (n_seeds, n_t) per-seed MSD, A^2
    t_eq_ps: float = 0.0

    def to_dict(self) -> dict:
        return {"estimator": self.estimator, "description": DESCRIPTION[self.estimator],
                "t_eq_ps": self.t_eq_ps, **self.result.to_dict()}


def multi_origin_curves(data: EnsembleData, t_eq_ps: float) -> tuple[np.ndarray, np.ndarray]:
    """Lag axis (ps) and per-seed multi-origin tracer MSD (A^2) from origins after
    ``t_eq_ps``, drift-corrected with the framework's centre of mass."""
    if data.li_unwrapped is None or data.t_pos is None:
        raise AnalysisError(f"{data.path}: the multi-origin estimator needs the seeds' "
                            "positions; read the ensemble with its positions")
    keep = data.t_pos >= t_eq_ps - 1e-9
    if np.count_nonzero(keep) < 10:
        raise AnalysisError(f"{data.path}: fewer than 10 position frames after the "
                            f"equilibration time {t_eq_ps:g} ps; run longer")
    lags = data.t_pos[keep] - data.t_pos[keep][0]
    curves = []
    for k in range(data.n_done):
        pos = np.asarray(data.li_unwrapped[k][keep], dtype=np.float64)
        if data.framework_com is not None:
            pos = msdmod.remove_drift(pos, data.framework_com[k][keep])
        curves.append(msdmod.multi_origin_msd(pos))
    return lags, np.array(curves)


def default_t_eq(time_ps: float) -> float:
    """Equilibration left out before the first origin: :data:`T_EQ_FRACTION` of the run, ps."""
    return T_EQ_FRACTION * time_ps


def multi_origin_window(span_ps: float) -> tuple[float, float]:
    """Lag window (ps) of a multi-origin MSD over ``span_ps`` of trajectory."""
    return (MULTI_ORIGIN_WINDOW[0] * span_ps, MULTI_ORIGIN_WINDOW[1] * span_ps)


def estimate(data: EnsembleData, estimator: str, window: tuple[float, float] | None = None,
             t_eq_ps: float | None = None, n_boot: int = 1000,
             paper_window: tuple[float, float] | None = None) -> Estimate:
    """D of ``data`` by ``estimator``. ``window``: fit window (ps; lags for multi-origin),
    default the estimator's own; ``paper_window``: the ensemble's window for the paper's
    estimator; ``t_eq_ps``: equilibration left out (multi-origin; default
    :func:`default_t_eq`)."""
    check_estimator(estimator)
    if estimator == "paper":
        w = window or paper_window
        if w is None:
            raise AnalysisError("the paper's estimator needs a fit window")
        res = fit_ensemble(data.t_msd, data.msd_total, w, n_boot=n_boot)
        return Estimate("paper", res, data.t_msd, data.msd_total, 0.0)
    time_ps = float(data.t_pos[-1]) if data.t_pos is not None else float(data.t_msd[-1])
    t_eq = default_t_eq(time_ps) if t_eq_ps is None else float(t_eq_ps)
    lags, curves = multi_origin_curves(data, t_eq)
    w = window or multi_origin_window(float(lags[-1]))
    n_in = int(np.count_nonzero((lags >= w[0]) & (lags <= w[1])))
    if n_in < MIN_WINDOW_POINTS:
        raise AnalysisError(
            f"the multi-origin lag window {w[0]:g}-{w[1]:g} ps holds {n_in} position frames "
            f"(< {MIN_WINDOW_POINTS}): the trajectories ({time_ps:g} ps) are too short for this "
            "estimator; run longer ones (--time) or use --estimator paper")
    res = fit_ensemble(lags, curves, w, n_boot=n_boot)
    return Estimate("multi-origin", res, lags, curves, t_eq)
