"""Figures (matplotlib, Agg backend), each saved as PNG and PDF.

Every function takes an output *stem* (path without suffix) and returns the list of written
files. Units on the axes: ps, A^2, cm^2/s, K.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .arrhenius import ArrheniusFit  # noqa: E402
from .compare import DeltaResult  # noqa: E402
from .convergence import ConvergenceResult  # noqa: E402
from .diffusion import DiffusionResult  # noqa: E402

__all__ = ["plot_arrhenius", "plot_bars", "plot_convergence", "plot_deltas", "plot_msd_fan", "save"]


def save(fig: plt.Figure, stem: str | Path) -> list[Path]:
    """Save ``fig`` as ``stem.png`` (150 dpi) and ``stem.pdf``, close it, return the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(out[0], dpi=150, bbox_inches="tight")
    fig.savefig(out[1], bbox_inches="tight", metadata={"CreationDate": None})  # reproducible
    plt.close(fig)
    return out


def plot_msd_fan(
    t_ps: np.ndarray,
    msd_per_seed: np.ndarray,
    result: DiffusionResult,
    stem: str | Path,
    title: str = "",
    max_seeds: int = 300,
) -> list[Path]:
    """Individual seed MSDs (thin), their mean (thick black) and the fit over the window."""
    t = np.asarray(t_ps)
    msd = np.atleast_2d(np.asarray(msd_per_seed))
    stride = max(1, t.size // 2000)
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    for row in msd[:max_seeds]:
        ax.plot(t[::stride], row[::stride], lw=0.4, alpha=0.3, color="tab:blue")
    ax.plot(t, msd.mean(axis=0), color="black", lw=2.0, label=f"mean of {msd.shape[0]} seeds")
    w0, w1 = result.window_ps
    tf = np.linspace(w0, w1, 50)
    slope = result.D_A2ps * 2 * result.dim
    ax.plot(tf, result.intercept_A2 + slope * tf, color="tab:red", lw=1.5, ls="--",
            label=f"fit {w0:.3g}-{w1:.3g} ps: D = {result.D_cm2s:.3g} cm$^2$/s")
    ax.axvspan(w0, w1, color="0.9", zorder=0)
    ax.set_xlabel("t (ps)")
    ax.set_ylabel(r"Li MSD ($\AA^2$)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left")
    return save(fig, stem)


def plot_convergence(conv: ConvergenceResult, stem: str | Path, title: str = "") -> list[Path]:
    """delta_N vs N: first-N curve, bootstrap mean with 68 % band, fitted 1/sqrt(N) law."""
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    ns = conv.ns
    ax.fill_between(ns, conv.delta_boot_lo, conv.delta_boot_hi, color="tab:blue", alpha=0.25,
                    label="random subsets, 16-84 %")
    ax.plot(ns, conv.delta_boot_mean, color="tab:blue", label="random subsets, mean")
    ax.plot(ns, conv.delta_first, "o-", ms=3, color="black", lw=0.8, label="first N seeds")
    dense = np.unique(np.geomspace(1, conv.n_total, 200).astype(int))
    ax.plot(dense, conv.expected(dense), color="tab:red", ls="--",
            label=rf"$A\sqrt{{1/N-1/n}}$, A = {conv.amplitude_fit:.2f}")
    ax.set_xscale("log")
    ax.set_xlabel("number of seeds N")
    ax.set_ylabel(r"$\delta_N = |D_N - D_{all}| / D_{all}$")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return save(fig, stem)


def plot_arrhenius(
    fits: Mapping[str, ArrheniusFit], stem: str | Path, title: str = ""
) -> list[Path]:
    """ln D vs 1000/T for each model with error bars, fit line and its 95 % band."""
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for i, (name, fit) in enumerate(sorted(fits.items())):
        color = f"C{i % 10}"
        x = 1000.0 / fit.T_K
        yerr = None if fit.sigma_D is None else fit.sigma_D
        ax.errorbar(x, fit.D, yerr=yerr, fmt="o", color=color, ms=4, capsize=2,
                    label=f"{name}: Ea = {fit.Ea_eV:.3f} $\\pm$ {fit.Ea_err_eV:.3f} eV")
        tt = np.linspace(fit.T_K.min() * 0.95, fit.T_K.max() * 1.05, 100)
        d, lo, hi = fit.predict(tt)
        ax.plot(1000.0 / tt, d, color=color, lw=1)
        if np.all(np.isfinite(lo)):
            ax.fill_between(1000.0 / tt, lo, hi, color=color, alpha=0.15)
    ax.set_yscale("log")
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel(r"D (cm$^2$/s)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7)
    return save(fig, stem)


def plot_deltas(
    xc: Mapping[str, DeltaResult],
    nn: Mapping[str, DeltaResult],
    stem: str | Path,
    title: str = "",
) -> list[Path]:
    """Bars of Delta_XC per architecture and Delta_NN per functional, in %, with MC errors."""
    labels: Sequence[str] = [f"XC {k}" for k in xc] + [f"NN {k}" for k in nn]
    vals = [r.value * 100 for r in xc.values()] + [r.value * 100 for r in nn.values()]
    errs = [r.err_mc * 100 for r in xc.values()] + [r.err_mc * 100 for r in nn.values()]
    colors = ["tab:orange"] * len(xc) + ["tab:purple"] * len(nn)
    fig, ax = plt.subplots(figsize=(max(3.0, 1.0 + 0.8 * len(labels)), 3.8))
    if labels:
        ax.bar(range(len(labels)), vals, yerr=errs, color=colors, capsize=3)
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylabel(r"$\Delta$ (%)")
    if title:
        ax.set_title(title)
    return save(fig, stem)


def plot_bars(rows: Sequence[tuple[str, float, float, str]], stem: str | Path, title: str = "",
              ylabel: str = r"D (cm$^2$/s)") -> list[Path]:
    """Bars of (label, value, 1-sigma error, group) side by side, one colour per group."""
    groups = list(dict.fromkeys(r[3] for r in rows))
    colors = {g: f"C{i % 10}" for i, g in enumerate(groups)}
    fig, ax = plt.subplots(figsize=(max(3.5, 1.0 + 0.7 * len(rows)), 3.8))
    for i, (_label, value, err, group) in enumerate(rows):
        ax.bar(i, value, yerr=err, color=colors[group], capsize=3,
               label=group if group not in ax.get_legend_handles_labels()[1] else None)
    ax.set_xticks(range(len(rows)), [r[0] for r in rows], rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(groups) > 1:
        ax.legend(fontsize=8)
    return save(fig, stem)
