"""Ionic conductivity from diffusion: Nernst-Einstein and the Haven ratio.

``sigma = n q^2 D / (kB T H_R)`` with ``n = N_Li / V``. Units: D in cm^2/s, V in A^3, T in K,
sigma in mS/cm. Check: 24 Li in 958.6 A^3 at 300 K gives
``sigma[mS/cm] ~ 1.55e8 * D[cm^2/s]``.

Haven ratio ``H_R = D_tracer / D_sigma``. ``D_sigma`` comes from the collective (charge) MSD
normalised per ion, ``|sum_i Delta r_i|^2 / N_Li = N_Li * MSD_com`` (see
:func:`lpsc_lmp.msd.collective_msd`), fitted exactly like the tracer MSD:
``D_sigma = slope / 6``. With it, ``sigma = n q^2 D_sigma / (kB T)`` directly.
"""

from __future__ import annotations

import numpy as np

from ..errors import AnalysisError

__all__ = [
    "E_CHARGE_C",
    "KB_J_PER_K",
    "conversion_factor_mScm",
    "haven_ratio",
    "haven_ratio_from_seeds",
    "nernst_einstein_mScm",
]

#: Elementary charge, C (exact).
E_CHARGE_C = 1.602176634e-19
#: Boltzmann constant, J/K (exact).
KB_J_PER_K = 1.380649e-23
_A3_TO_CM3 = 1.0e-24


def conversion_factor_mScm(n_ions: int, volume_A3: float, T_K: float, charge: float = 1.0) -> float:
    """Factor f with ``sigma[mS/cm] = f * D[cm^2/s] / H_R``.

    ``f = 1000 * (n_ions / (V * 1e-24 cm^3)) * (z e)^2 / (kB T)``; S = C^2 / (J s).
    """
    if n_ions <= 0 or volume_A3 <= 0 or T_K <= 0:
        raise AnalysisError("n_ions, volume_A3 and T_K must all be > 0")
    n_cm3 = n_ions / (volume_A3 * _A3_TO_CM3)
    q = charge * E_CHARGE_C
    return 1.0e3 * n_cm3 * q * q / (KB_J_PER_K * T_K)


def nernst_einstein_mScm(
    D_cm2s: float | np.ndarray,
    n_ions: int,
    volume_A3: float,
    T_K: float,
    charge: float = 1.0,
    haven_ratio: float = 1.0,
) -> float | np.ndarray:
    """Nernst-Einstein conductivity, mS/cm, from a tracer D (cm^2/s) and a Haven ratio.

    Pass ``haven_ratio=1`` (default) for the uncorrelated estimate, or pass the collective
    ``D_sigma`` as ``D_cm2s`` with ``haven_ratio=1``.
    """
    if not haven_ratio > 0:
        raise AnalysisError(f"Haven ratio must be > 0, got {haven_ratio}")
    f = conversion_factor_mScm(n_ions, volume_A3, T_K, charge)
    out = f * np.asarray(D_cm2s, dtype=np.float64) / haven_ratio
    return float(out) if out.ndim == 0 else out


def haven_ratio(D_tracer: float, D_sigma: float) -> float:
    """``H_R = D_tracer / D_sigma`` (same units for both)."""
    if D_sigma == 0:
        raise AnalysisError("D_sigma is zero (collective MSD shows no drift); Haven ratio "
                            "undefined")
    return float(D_tracer) / float(D_sigma)


def haven_ratio_from_seeds(
    per_seed_D_tracer: np.ndarray,
    per_seed_D_sigma: np.ndarray,
    n_boot: int = 1000,
    rng_seed: int = 0,
) -> tuple[float, tuple[float, float]]:
    """Haven ratio of seed means with a paired percentile-bootstrap 95 % interval.

    Tracer and collective D of a seed come from the same trajectory, so seeds are resampled in
    pairs (this keeps their correlation). ``H_R = mean(D_tracer) / mean(D_sigma)``; the
    per-seed collective D is very noisy (one collective coordinate per seed), so the ratio of
    means, not the mean of ratios, is used.
    """
    a = np.asarray(per_seed_D_tracer, dtype=np.float64)
    b = np.asarray(per_seed_D_sigma, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise AnalysisError("tracer and collective per-seed D must be 1-D arrays of equal length")
    h = haven_ratio(a.mean(), b.mean())
    if a.size < 2:
        return h, (float("nan"), float("nan"))
    rng = np.random.default_rng(rng_seed)
    idx = rng.integers(0, a.size, size=(n_boot, a.size))
    num, den = a[idx].mean(axis=1), b[idx].mean(axis=1)
    ok = den > 0
    if not np.any(ok):
        return h, (float("nan"), float("nan"))
    ratios = num[ok] / den[ok]
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return h, (float(lo), float(hi))
