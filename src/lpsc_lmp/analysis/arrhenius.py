"""Arrhenius fit ``ln D = ln D0 - Ea / (kB T)`` with the full parameter covariance.

Units: T in K, Ea in eV, D in whatever unit it is given (cm^2/s in this project); D0 and all
predictions come back in that same unit.

Model: ``y = ln D = a + b x`` with ``x = 1/(kB T)`` (1/eV), ``a = ln D0``, ``b = -Ea``. The fit is
weighted least squares with weights ``1/sigma_lnD^2``, ``sigma_lnD = sigma_D / D`` (first-order
propagation). The parameter covariance is ``C = (X^T W X)^-1`` for the ordered parameters
``(ln D0, Ea)``, i.e. the input errors are taken as absolute (``curve_fit(absolute_sigma=True)``).
It is multiplied by the reduced chi^2 only when ``scale_by_chi2=True`` is passed (which needs
>= 3 points; equivalent to ``curve_fit(absolute_sigma=False)``).
The reduced chi^2 is always reported so that an underestimated input error is visible.

Without ``sigma_D`` the fit is unweighted and the covariance comes from the residuals
(``s^2 (X^T X)^-1``), which needs at least 3 points. Predictions at any T use the delta method on
``ln D``: ``var(ln D(T)) = J C J^T`` with ``J = [1, -1/(kB T)]``; the interval is symmetric in
``ln D`` and hence multiplicative in D.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import AnalysisError

__all__ = ["KB_EV", "ArrheniusFit", "fit_arrhenius"]

#: Boltzmann constant, eV/K (CODATA 2018, exact).
KB_EV = 8.617333262e-5
_Z95 = 1.959963984540054


@dataclass(frozen=True)
class ArrheniusFit:
    """Result of :func:`fit_arrhenius`.

    Attributes:
        ln_D0: intercept ``ln D0`` (D0 in the unit of the input D).
        Ea_eV: activation energy, eV.
        Ea_err_eV: one-sigma error of Ea, eV (nan when no error estimate is possible).
        cov: 2x2 covariance of ``(ln D0, Ea)``.
        chi2_red: reduced chi^2 (nan for dof = 0 or unweighted fits).
        dof: degrees of freedom, ``n_points - 2``.
        T_K, D, sigma_D: the input data.
        scaled_by_chi2: whether ``cov`` was multiplied by ``chi2_red``.
        warnings: problems worth reporting.
    """

    ln_D0: float
    Ea_eV: float
    Ea_err_eV: float
    cov: np.ndarray = field(repr=False)
    chi2_red: float
    dof: int
    T_K: np.ndarray = field(repr=False)
    D: np.ndarray = field(repr=False)
    sigma_D: np.ndarray | None = field(repr=False)
    scaled_by_chi2: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def D0(self) -> float:
        """Prefactor, unit of the input D."""
        return float(np.exp(self.ln_D0))

    def ln_D(self, T_K: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``ln D(T)`` and its one-sigma error from ``J C J^T`` (T in K)."""
        x = 1.0 / (KB_EV * np.asarray(T_K, dtype=np.float64))
        y = self.ln_D0 - self.Ea_eV * x
        c = self.cov
        var = c[0, 0] - 2.0 * x * c[0, 1] + x * x * c[1, 1]
        return y, np.sqrt(np.clip(var, 0.0, None))

    def predict(
        self, T_K: float | np.ndarray, level_sigma: float = _Z95
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """D at temperature(s) ``T_K`` with an interval (default 95 %, ``+-1.96 sigma`` in ln D).

        Returns:
            ``(D, lo, hi)`` in the unit of the input D (nan bounds when the covariance is
            unknown).
        """
        y, s = self.ln_D(T_K)
        return np.exp(y), np.exp(y - level_sigma * s), np.exp(y + level_sigma * s)

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {
            "ln_D0": self.ln_D0,
            "D0": self.D0,
            "Ea_eV": self.Ea_eV,
            "Ea_err_eV": self.Ea_err_eV,
            "cov_lnD0_Ea": self.cov.tolist(),
            "chi2_red": self.chi2_red,
            "dof": self.dof,
            "T_K": self.T_K.tolist(),
            "D": self.D.tolist(),
            "sigma_D": None if self.sigma_D is None else self.sigma_D.tolist(),
            "scaled_by_chi2": self.scaled_by_chi2,
            "warnings": list(self.warnings),
        }


def _check_inputs(
    T_K: np.ndarray, D: np.ndarray, sigma_D: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    t = np.asarray(T_K, dtype=np.float64).ravel()
    d = np.asarray(D, dtype=np.float64).ravel()
    if t.size != d.size:
        raise AnalysisError(f"T and D differ in length ({t.size} vs {d.size})")
    if t.size < 2:
        raise AnalysisError(f"an Arrhenius fit needs >= 2 temperatures, got {t.size}; run more T")
    if np.any(~np.isfinite(t)) or np.any(t <= 0):
        raise AnalysisError("temperatures must be finite and > 0 K")
    if np.any(~np.isfinite(d)) or np.any(d <= 0):
        raise AnalysisError("all D must be finite and > 0 to take ln D; drop non-diffusive points")
    if np.unique(t).size < 2:
        raise AnalysisError("need at least 2 distinct temperatures")
    s = None
    if sigma_D is not None:
        s = np.asarray(sigma_D, dtype=np.float64).ravel()
        if s.size != d.size:
            raise AnalysisError(f"sigma_D has {s.size} values for {d.size} D values")
        if np.any(~np.isfinite(s)) or np.any(s <= 0):
            raise AnalysisError("sigma_D must be finite and > 0; use more than one seed per T")
    return t, d, s


def fit_arrhenius(
    T_K: np.ndarray,
    D: np.ndarray,
    sigma_D: np.ndarray | None = None,
    scale_by_chi2: bool = False,
) -> ArrheniusFit:
    """Weighted fit of ``ln D`` vs ``1/(kB T)``; see the module docstring.

    Args:
        T_K: temperatures, K (>= 2 distinct values).
        D: diffusion coefficients (> 0), any unit.
        sigma_D: one-sigma errors of D (same unit); None for an unweighted fit.
        scale_by_chi2: multiply the covariance by the reduced chi^2 (needs >= 3 points).

    Raises:
        ValueError: fewer than 2 points, non-positive D or sigma, scale_by_chi2 with 2 points.
    """
    t, d, s = _check_inputs(T_K, D, sigma_D)
    n = t.size
    dof = n - 2
    x = 1.0 / (KB_EV * t)
    y = np.log(d)
    # parameters p = (ln D0, Ea): y = p0 - p1 x
    X = np.column_stack([np.ones(n), -x])
    w = np.ones(n) if s is None else 1.0 / (s / d) ** 2
    A = X.T @ (w[:, None] * X)
    p = np.linalg.solve(A, X.T @ (w * y))
    resid = y - X @ p
    chi2 = float(np.sum(w * resid**2))
    warn: list[str] = []
    if s is None:
        if dof < 1:
            cov = np.full((2, 2), np.nan)
            warn.append("2 points and no D errors: Ea has no error estimate; add a temperature")
        else:
            cov = np.linalg.inv(A) * chi2 / dof
        chi2_red = float("nan")
        scaled = s is None and dof >= 1
    else:
        cov = np.linalg.inv(A)
        chi2_red = chi2 / dof if dof >= 1 else float("nan")
        scaled = False
        if scale_by_chi2:
            if dof < 1:
                raise AnalysisError("scale_by_chi2 needs >= 3 temperatures; add one or drop the "
                                    "flag")
            cov = cov * chi2_red
            scaled = True
        elif dof >= 1 and chi2_red > 3.0:
            warn.append(
                f"reduced chi^2 = {chi2_red:.1f} >> 1: D errors too small or not Arrhenius; "
                "consider scale_by_chi2=True"
            )
        if dof < 1:
            warn.append("2 points: the line passes through both; error is from D errors only")
    ea_err = float(np.sqrt(cov[1, 1])) if np.isfinite(cov[1, 1]) else float("nan")
    return ArrheniusFit(
        ln_D0=float(p[0]),
        Ea_eV=float(p[1]),
        Ea_err_eV=ea_err,
        cov=cov,
        chi2_red=chi2_red,
        dof=dof,
        T_K=t,
        D=d,
        sigma_D=s,
        scaled_by_chi2=scaled,
        warnings=tuple(warn),
    )
